"""Pure image code: no Kafka, no network, no files."""
