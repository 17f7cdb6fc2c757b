package org.elasticsearch.node;

import newsmon.analysis.NewsmonAnalysisPlugin;
import newsmon.rest.RootInfoPlugin;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.elasticsearch.cluster.ClusterName;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starts a single-node Elasticsearch from jars on the classpath, for development and tests.
 *
 * <p>Why this class lives in {@code org.elasticsearch.node}: {@link NodeConstruction#prepareConstruction} and
 * {@link NodeServiceProvider} are package-private, and they are the only way to give the node a plugins service
 * that loads plugins from the classpath (the ES distribution's plugin/module folders do not exist here).
 * This mirrors the private constructor of the test framework's {@code MockNode}, without its public constructors,
 * which go through the randomized-testing bootstrap (refuses root, installs a syscall filter).
 *
 * <p>Plugins: netty4 (HTTP and transport), {@link NewsmonAnalysisPlugin} (nori / smartcn / cjk names as in
 * production) and {@link RootInfoPlugin} ({@code GET /}, which the absent rest-root module would serve).
 *
 * <p>What the real {@code org.elasticsearch.bootstrap.Elasticsearch} does and this does not: no CLI process, no
 * keystore, no entitlements agent, no native syscall filter / memory lock, no bootstrap checks (they only run in
 * the real bootstrap), no root refusal. No x-pack: plain HTTP, no security, no ML.
 *
 * <p>Usage: {@code java -cp 'lib/*' org.elasticsearch.node.NewsmonNode -Epath.home=DIR [-Ekey=value ...]}.
 * Settings given with -E override the defaults below. Logs go to {@code path.logs} (default {@code <home>/logs});
 * stdout only gets one "started" line and fatal errors.
 */
public final class NewsmonNode {

    /** Printed to stdout once HTTP is up; the Python manager does not depend on it (it polls health). */
    static final String READY_MARKER = "NEWSMON_NODE_STARTED";

    private NewsmonNode() {}

    public static void main(String[] args) {
        final PrintStream out = System.out;
        final PrintStream err = System.err;
        final Node node;
        try {
            Settings settings = buildSettings(args);
            node = startNode(settings);
        } catch (Throwable t) {
            // stderr goes to stdout.log (the manager shows its last line); the node log gets the full trace too
            err.println("newsmon-node: failed to start: " + t);
            t.printStackTrace(err);
            err.flush();
            try {
                LogManager.getLogger(NewsmonNode.class).error("failed to start", t);
                Configurator.shutdown((LoggerContext) LogManager.getContext(false));
            } catch (Throwable ignored) {
                // logging itself may be what failed
            }
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM/SIGINT: close the node properly so that shards are flushed and the node lock is released.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> shutdown(node, stopped), "newsmon-node-shutdown"));

        watchParent();
        out.println(READY_MARKER);
        out.flush();
        try {
            // keep the JVM alive; ES threads are daemon threads
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * With {@code -Dnewsmon.watch.pid=N} the node stops itself (cleanly, via the shutdown hook) once process N is
     * gone: a test run that is killed does not leave its node behind.
     */
    private static void watchParent() {
        String watched = System.getProperty("newsmon.watch.pid");
        if (watched == null || watched.isBlank()) {
            return;
        }
        long pid = Long.parseLong(watched.trim());
        Thread watcher = new Thread(() -> {
            while (true) {
                if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) == false) {
                    LogManager.getLogger(NewsmonNode.class).info("watched process [{}] is gone, stopping", pid);
                    System.exit(0);
                }
                try {
                    Thread.sleep(2000);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "newsmon-parent-watcher");
        watcher.setDaemon(true);
        watcher.start();
    }

    static Settings buildSettings(String[] args) {
        Settings.Builder given = Settings.builder();
        for (String arg : args) {
            if (arg.startsWith("-E") == false || arg.indexOf('=') < 0) {
                throw new IllegalArgumentException("expected -Ekey=value, got [" + arg + "]");
            }
            String kv = arg.substring(2);
            int eq = kv.indexOf('=');
            given.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Settings cli = given.build();
        if (cli.get("path.home") == null) {
            throw new IllegalArgumentException("-Epath.home=DIR is required");
        }
        return Settings.builder()
            .put("cluster.name", "newsmon-local")
            .put("node.name", "newsmon-local")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            // a dev box's disk may well be >90% full; don't turn indices read-only for that
            .put("cluster.routing.allocation.disk.threshold_enabled", "false")
            // tests and `newsmon` dev commands clean up with wildcards (newsmon-test-*)
            .put("action.destructive_requires_name", "false")
            .put(cli)
            .build();
    }

    static Node startNode(Settings settings) throws Exception {
        Path home = Path.of(settings.get("path.home")).toAbsolutePath();
        Path config = home.resolve("config");
        Files.createDirectories(config);
        // Our own log4j config (file only, INFO); always rewritten so upgrades of this jar take effect.
        try (InputStream in = NewsmonNode.class.getResourceAsStream("/newsmon-log4j2.properties")) {
            if (in == null) {
                throw new IllegalStateException("newsmon-log4j2.properties missing from the classpath");
            }
            Files.copy(in, config.resolve("log4j2.properties"), StandardCopyOption.REPLACE_EXISTING);
        }
        Settings withHome = Settings.builder().put(settings).put("path.home", home.toString()).build();

        // Same order as the real bootstrap: logging is configured before anything logs.
        LogConfigurator.registerErrorListener();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            withHome,
            Collections.emptyMap(),
            config,
            () -> withHome.get("node.name")
        );
        Files.createDirectories(env.logsDir());
        LogConfigurator.setClusterName(ClusterName.CLUSTER_NAME_SETTING.get(env.settings()).value());
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env, false);

        Logger logger = LogManager.getLogger(NewsmonNode.class);
        logger.info("starting newsmon local node, home [{}], JVM [{}]", home, Runtime.version());

        List<Class<? extends Plugin>> plugins = List.of(Netty4Plugin.class, NewsmonAnalysisPlugin.class, RootInfoPlugin.class);
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment environment, PluginsLoader pluginsLoader) {
                return new MockPluginsService(environment.settings(), environment, plugins);
            }
        };
        Node node = new Node(NodeConstruction.prepareConstruction(env, null, provider, true));
        node.start();
        logger.info("newsmon local node started");
        return node;
    }

    private static void shutdown(Node node, CountDownLatch stopped) {
        Logger logger = LogManager.getLogger(NewsmonNode.class);
        try {
            logger.info("stopping newsmon local node");
            node.prepareForClose();
            node.close();
            if (node.awaitClose(20, TimeUnit.SECONDS) == false) {
                logger.warn("node did not stop within 20s");
            }
            logger.info("newsmon local node stopped");
        } catch (Throwable t) {
            logger.error("error while stopping the node", t);
        } finally {
            stopped.countDown();
            // log4j's own shutdown hook is disabled (-Dlog4j.shutdownHookEnabled=false) so that the lines above get written
            Configurator.shutdown((LoggerContext) LogManager.getContext(false));
        }
    }
}
