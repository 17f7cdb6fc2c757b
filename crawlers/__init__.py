"""Crawling: source registry, Scrapy spider and pipelines, article extraction."""
