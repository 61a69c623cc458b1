-- The image and batch API: photos deleted at their seller's request (later events for
-- them are ignored), re-enhancements asked for over the API, and batches of them.

CREATE TABLE IF NOT EXISTS deleted_images (
  image_id CHAR(32) NOT NULL PRIMARY KEY,
  content_sha256 CHAR(64) NULL,
  deleted_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS batches (
  batch_id CHAR(32) NOT NULL PRIMARY KEY,
  state ENUM('running','completed','cancelled') NOT NULL DEFAULT 'running',
  profile_name VARCHAR(64) NOT NULL,
  profile_version VARCHAR(32) NOT NULL,
  selection JSON NOT NULL,
  total INT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  finished_at DATETIME(3) NULL,
  KEY ix_batches_state (state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One re-enhancement of one photo under one profile version: from POST .../enhance
-- (batch_id NULL) or from a batch. state: queued (not sent yet), sent, cancelled.
CREATE TABLE IF NOT EXISTS enhance_requests (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  batch_id CHAR(32) NULL,
  image_id CHAR(32) NOT NULL,
  job_id CHAR(32) NOT NULL,
  state ENUM('queued','sent','cancelled') NOT NULL DEFAULT 'queued',
  requested_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  sent_at DATETIME(3) NULL,
  UNIQUE KEY uq_enhance_requests (batch_id, image_id),
  KEY ix_enhance_requests_batch_state (batch_id, state, id),
  KEY ix_enhance_requests_image (image_id, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
