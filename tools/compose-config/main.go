// compose-config loads a Compose file the way `docker compose config` does, with the Compose
// Specification's own Go loader (github.com/compose-spec/compose-go, the library inside the
// docker compose plugin): schema validation, interpolation from an env file, required
// variables (${VAR:?message}) and cross-references. It lets the suite check
// docker/docker-compose.yml where the docker CLI has no compose plugin.
//
// Usage: compose-config [-env-file FILE] [-quiet] COMPOSE_FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "variables to interpolate, as docker compose --env-file")
	quiet := flag.Bool("quiet", false, "only validate; print nothing")
	flag.Parse()
	options := []cli.ProjectOptionsFn{cli.WithName("newsmon")}
	if *envFile != "" {
		options = append(options, cli.WithEnvFiles(*envFile))
	}
	options = append(options, cli.WithDotEnv)
	opts, err := cli.NewProjectOptions(flag.Args(), options...)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	if !*quiet {
		out, err := project.MarshalYAML()
		if err != nil {
			fail(err)
		}
		os.Stdout.Write(out)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
