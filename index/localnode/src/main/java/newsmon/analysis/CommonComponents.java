package newsmon.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.cjk.CJKAnalyzer;
import org.apache.lucene.analysis.cjk.CJKBigramFilter;
import org.apache.lucene.analysis.cjk.CJKWidthFilter;
import org.apache.lucene.analysis.core.KeywordTokenizer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.el.GreekLowerCaseFilter;
import org.apache.lucene.analysis.ga.IrishLowerCaseFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.tr.TurkishLowerCaseFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.lucene.analysis.miscellaneous.DisableGraphAttribute;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The few analysis-common components (a built-in module of every real ES node, absent locally) that newsmon's
 * mappings use: {@code cjk_bigram}, {@code cjk_width}, the {@code cjk} analyzer, the configurable
 * {@code lowercase} filter, {@code asciifolding}, and the {@code keyword} / {@code whitespace} tokenizers.
 */
final class CommonComponents {

    private static final List<String> CJK_SCRIPTS = List.of("han", "hiragana", "katakana", "hangul");

    private CommonComponents() {}

    /** cjk_bigram: ignored_scripts (han, hiragana, katakana, hangul) and output_unigrams, as in analysis-common. */
    static TokenFilterFactory cjkBigramFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        boolean outputUnigrams = settings.getAsBoolean("output_unigrams", false);
        List<String> ignored = settings.getAsList("ignored_scripts", List.of());
        int flags = 0;
        for (String script : CJK_SCRIPTS) {
            if (ignored.contains(script) == false) {
                flags |= switch (script) {
                    case "han" -> CJKBigramFilter.HAN;
                    case "hiragana" -> CJKBigramFilter.HIRAGANA;
                    case "katakana" -> CJKBigramFilter.KATAKANA;
                    default -> CJKBigramFilter.HANGUL;
                };
            }
        }
        final int scriptFlags = flags;
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                CJKBigramFilter filter = new CJKBigramFilter(in, scriptFlags, outputUnigrams);
                if (outputUnigrams) {
                    // unigrams + bigrams at overlapping positions are not a sane token graph for query parsing
                    filter.addAttribute(DisableGraphAttribute.class);
                }
                return filter;
            }
        };
    }

    static TokenFilterFactory cjkWidthFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        return normalizing(name, settings, CJKWidthFilter::new);
    }

    /** lowercase with the optional {@code language} (greek, irish, turkish) of analysis-common. */
    static TokenFilterFactory lowercaseFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        String language = settings.get("language");
        UnaryOperator<TokenStream> filter;
        if (language == null) {
            filter = LowerCaseFilter::new;
        } else {
            filter = switch (language) {
                case "greek" -> GreekLowerCaseFilter::new;
                case "irish" -> IrishLowerCaseFilter::new;
                case "turkish" -> TurkishLowerCaseFilter::new;
                default -> throw new IllegalArgumentException("language [" + language + "] not support for lower case");
            };
        }
        return normalizing(name, settings, filter);
    }

    /** asciifolding with preserve_original; normalizers (keyword fields) only get the folded form, as upstream. */
    static TokenFilterFactory asciiFoldingFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new ASCIIFoldingFilter(in, preserveOriginal);
            }

            @Override
            public TokenStream normalize(TokenStream in) {
                return new ASCIIFoldingFilter(in, false);
            }
        };
    }

    /** cjk analyzer: stopwords / stopwords_path (default: Lucene's CJK stop set). */
    static AnalyzerProvider<? extends Analyzer> cjkAnalyzer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        CJKAnalyzer analyzer = new CJKAnalyzer(Analysis.parseStopWords(env, settings, CJKAnalyzer.getDefaultStopSet()));
        return new AbstractIndexAnalyzerProvider<CJKAnalyzer>(name, settings) {
            @Override
            public CJKAnalyzer get() {
                return analyzer;
            }
        };
    }

    static TokenizerFactory keywordTokenizer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        int bufferSize = settings.getAsInt("buffer_size", 256);
        return new AbstractTokenizerFactory(indexSettings, settings, name) {
            @Override
            public Tokenizer create() {
                return new KeywordTokenizer(bufferSize);
            }
        };
    }

    static TokenizerFactory whitespaceTokenizer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        int maxTokenLength = settings.getAsInt("max_token_length", 255);
        return new AbstractTokenizerFactory(indexSettings, settings, name) {
            @Override
            public Tokenizer create() {
                return new WhitespaceTokenizer(WhitespaceTokenizer.DEFAULT_TOKEN_ATTRIBUTE_FACTORY, maxTokenLength);
            }
        };
    }

    /** A filter that is also applied by normalizers (keyword fields, query-time normalization). */
    private static TokenFilterFactory normalizing(String name, Settings settings, UnaryOperator<TokenStream> filter) {
        return new NormalizingFactory(name, settings, filter);
    }

    private static final class NormalizingFactory extends AbstractTokenFilterFactory implements NormalizingTokenFilterFactory {
        private final UnaryOperator<TokenStream> filter;

        NormalizingFactory(String name, Settings settings, UnaryOperator<TokenStream> filter) {
            super(name, settings);
            this.filter = filter;
        }

        @Override
        public TokenStream create(TokenStream in) {
            return filter.apply(in);
        }
    }
}
