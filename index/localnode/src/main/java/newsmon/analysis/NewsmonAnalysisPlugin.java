package newsmon.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.util.Map;

/**
 * The CJK analysis components newsmon's index mappings use, for the local node only.
 *
 * <p>Production runs the official {@code analysis-nori} and {@code analysis-smartcn} plugins plus the built-in
 * {@code analysis-common} module; none of those is published on Maven Central, so this plugin registers the same
 * names, built on the same Apache Lucene classes (lucene-analysis-nori / -smartcn / -common at the exact Lucene
 * version of the ES server), so that one mapping works in both places. The commonly used settings of the official
 * components are supported; anything else is ignored or rejected as noted per component.
 */
public final class NewsmonAnalysisPlugin extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of(
            "nori_tokenizer", NoriComponents::tokenizer,
            "smartcn_tokenizer", SmartcnComponents::tokenizer,
            // analysis-common tokenizers that keyword-ish / whitespace-split fields commonly name
            "keyword", CommonComponents::keywordTokenizer,
            "whitespace", CommonComponents::whitespaceTokenizer
        );
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "nori_part_of_speech", NoriComponents::partOfSpeechFilter,
            "nori_readingform", NoriComponents::readingFormFilter,
            "nori_number", NoriComponents::numberFilter,
            "smartcn_stop", SmartcnComponents::stopFilter,
            "cjk_bigram", CommonComponents::cjkBigramFilter,
            "cjk_width", CommonComponents::cjkWidthFilter,
            "lowercase", CommonComponents::lowercaseFilter,
            "asciifolding", CommonComponents::asciiFoldingFilter
        );
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of(
            "nori", NoriComponents::analyzer,
            "smartcn", SmartcnComponents::analyzer,
            "cjk", CommonComponents::cjkAnalyzer
        );
    }
}
