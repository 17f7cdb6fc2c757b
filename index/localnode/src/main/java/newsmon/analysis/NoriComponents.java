package newsmon.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ko.KoreanAnalyzer;
import org.apache.lucene.analysis.ko.KoreanNumberFilter;
import org.apache.lucene.analysis.ko.KoreanPartOfSpeechStopFilter;
import org.apache.lucene.analysis.ko.KoreanReadingFormFilter;
import org.apache.lucene.analysis.ko.KoreanTokenizer;
import org.apache.lucene.analysis.ko.POS;
import org.apache.lucene.analysis.ko.dict.UserDictionary;
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

import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Korean components with the names and settings of the official analysis-nori plugin:
 * analyzer {@code nori} (decompound_mode, user_dictionary / user_dictionary_rules, stoptags),
 * tokenizer {@code nori_tokenizer} (decompound_mode, discard_punctuation, user_dictionary / user_dictionary_rules),
 * filters {@code nori_part_of_speech} (stoptags), {@code nori_readingform}, {@code nori_number}.
 */
final class NoriComponents {

    private NoriComponents() {}

    static TokenizerFactory tokenizer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        KoreanTokenizer.DecompoundMode mode = decompoundMode(settings);
        UserDictionary userDictionary = userDictionary(env, settings);
        boolean discardPunctuation = settings.getAsBoolean("discard_punctuation", true);
        return new AbstractTokenizerFactory(indexSettings, settings, name) {
            @Override
            public org.apache.lucene.analysis.Tokenizer create() {
                return new KoreanTokenizer(
                    KoreanTokenizer.DEFAULT_TOKEN_ATTRIBUTE_FACTORY,
                    userDictionary,
                    mode,
                    false,
                    discardPunctuation
                );
            }
        };
    }

    static AnalyzerProvider<? extends Analyzer> analyzer(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        KoreanAnalyzer analyzer = new KoreanAnalyzer(userDictionary(env, settings), decompoundMode(settings), stopTags(env, settings), false);
        return new AbstractIndexAnalyzerProvider<KoreanAnalyzer>(name, settings) {
            @Override
            public KoreanAnalyzer get() {
                return analyzer;
            }
        };
    }

    static TokenFilterFactory partOfSpeechFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        Set<POS.Tag> tags = stopTags(env, settings);
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new KoreanPartOfSpeechStopFilter(in, tags);
            }
        };
    }

    static TokenFilterFactory readingFormFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new KoreanReadingFormFilter(in);
            }
        };
    }

    static TokenFilterFactory numberFilter(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new KoreanNumberFilter(in);
            }
        };
    }

    static KoreanTokenizer.DecompoundMode decompoundMode(Settings settings) {
        String mode = settings.get("decompound_mode", KoreanTokenizer.DEFAULT_DECOMPOUND.name());
        try {
            return KoreanTokenizer.DecompoundMode.valueOf(mode.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("[decompound_mode] must be one of none, discard, mixed; got [" + mode + "]");
        }
    }

    /** Rules inline (user_dictionary_rules) or from a file relative to the config dir (user_dictionary), like the official plugin. */
    static UserDictionary userDictionary(Environment env, Settings settings) {
        if (settings.get("user_dictionary") != null && settings.get("user_dictionary_rules") != null) {
            throw new IllegalArgumentException("It is not allowed to use [user_dictionary] in conjunction with [user_dictionary_rules]");
        }
        List<String> rules = Analysis.getWordList(env, settings, "user_dictionary", "user_dictionary_rules", "lenient", true, true);
        if (rules == null || rules.isEmpty()) {
            return null;
        }
        try {
            return UserDictionary.open(new StringReader(String.join("\n", rules)));
        } catch (IOException e) {
            throw new UncheckedIOException("failed to load nori user dictionary", e);
        }
    }

    static Set<POS.Tag> stopTags(Environment env, Settings settings) {
        List<String> tags = Analysis.getWordList(env, settings, "stoptags");
        if (tags == null) {
            return KoreanPartOfSpeechStopFilter.DEFAULT_STOP_TAGS;
        }
        Set<POS.Tag> resolved = new HashSet<>();
        for (String tag : tags) {
            resolved.add(POS.resolveTag(tag));
        }
        return resolved;
    }
}
