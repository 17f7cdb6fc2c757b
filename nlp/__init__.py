"""Analysis of crawled articles: language, tokens, entities, keywords, topics, the
export-control alert and story clusters. Entry points: nlp.pipeline.analyze_articles,
nlp.jsonl.analyze_jsonl, nlp.cli.analyze_command."""
