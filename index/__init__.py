"""Elasticsearch side of newsmon: index template and alias, idempotent bulk upserts with a
disk spool, search and stats, re-analysis of stored articles, Kibana saved objects."""
