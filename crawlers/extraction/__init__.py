"""The parts of article extraction, one concern per module (``crawlers.extract`` is the entry point)."""
