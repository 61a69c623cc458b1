-- What at-least-once delivery needs: a record of processed event ids, so a sink can tell a
-- redelivered event from a new one, and a table of dead letters operators can query.

CREATE TABLE IF NOT EXISTS processed_events (
  event_id CHAR(32) NOT NULL,
  stage VARCHAR(32) NOT NULL,
  processed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (stage, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS dead_letters (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  event_id CHAR(32) NOT NULL,
  stage VARCHAR(32) NOT NULL,
  error_class VARCHAR(128) NOT NULL,
  error_message TEXT NOT NULL,
  source_topic VARCHAR(255) NOT NULL,
  source_partition INT NULL,
  source_offset BIGINT NULL,
  image_id CHAR(32) NULL,
  original_event MEDIUMTEXT NOT NULL,
  failed_at DATETIME(3) NOT NULL,
  recorded_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_dead_letters_event (event_id),
  KEY ix_dead_letters_stage (stage, failed_at),
  KEY ix_dead_letters_image (image_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
