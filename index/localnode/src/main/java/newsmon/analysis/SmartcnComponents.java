package newsmon.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.StopFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.cn.smart.HMMChineseTokenizer;
import org.apache.lucene.analysis.cn.smart.SmartChineseAnalyzer;
import org.apache.lucene.search.suggest.analyzing.SuggestStopFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.util.Map;
import java.util.Set;

/**
 * Chinese components with the names of the official analysis-smartcn plugin: analyzer {@code smartcn} (default
 * stop set, no settings, as upstream), tokenizer {@code smartcn_tokenizer}, filter {@code smartcn_stop}
 * (stopwords incl. {@code _smartcn_}, stopwords_path, ignore_case, remove_trailing).
 */
final class SmartcnComponents {

    private SmartcnComponents() {}

    static TokenizerFactory tokenizer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        return new AbstractTokenizerFactory(indexSettings, settings, name) {
            @Override
            public Tokenizer create() {
                return new HMMChineseTokenizer();
            }
        };
    }

    static AnalyzerProvider<? extends Analyzer> analyzer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        SmartChineseAnalyzer analyzer = new SmartChineseAnalyzer(SmartChineseAnalyzer.getDefaultStopSet());
        return new AbstractIndexAnalyzerProvider<SmartChineseAnalyzer>(name, settings) {
            @Override
            public SmartChineseAnalyzer get() {
                return analyzer;
            }
        };
    }

    static TokenFilterFactory stopFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        boolean ignoreCase = settings.getAsBoolean("ignore_case", false);
        boolean removeTrailing = settings.getAsBoolean("remove_trailing", true);
        Map<String, Set<?>> named = Map.of("_smartcn_", SmartChineseAnalyzer.getDefaultStopSet());
        CharArraySet stopWords = Analysis.parseWords(
            env,
            settings,
            "stopwords",
            SmartChineseAnalyzer.getDefaultStopSet(),
            named,
            ignoreCase
        );
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                // remove_trailing=false keeps a trailing stop word (for search-as-you-type), as upstream
                return removeTrailing ? new StopFilter(in, stopWords) : new SuggestStopFilter(in, stopWords);
            }
        };
    }
}
