"""The local Elasticsearch node for development and tests: a Maven project (``pom.xml``, ``src/``)
that bundles the server jars from Maven Central with our CJK analysis, and its launcher
(``launcher``: build, start, stop, status)."""
