"""Scrapy spiders (discovery only)."""
