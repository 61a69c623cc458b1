-- The seed design's tables, adapted to the streaming pipeline.
-- Differences from the seed, and why:
--  * product_images.image_id is the deterministic id events carry (hash of seller, SKU and
--    content); children reference it so sinks can write without looking ids up.
--  * status follows the seed's state machine (uploaded .. completed / skipped / failed).
--  * money is DECIMAL(12,6), not FLOAT: sums of many small prices must be exact.
--  * unique keys (job_id, (job_id, step_order), (image_id, metric_type, profile), request_id)
--    make every sink write an idempotent upsert.

CREATE TABLE IF NOT EXISTS product_images (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  image_id CHAR(32) NOT NULL,
  seller_id VARCHAR(64) NOT NULL,
  product_group_id VARCHAR(64) NULL,
  sku_id VARCHAR(64) NOT NULL,
  filename VARCHAR(255) NULL,
  original_url VARCHAR(1024) NOT NULL,
  content_sha256 CHAR(64) NOT NULL,
  format VARCHAR(8) NOT NULL,
  width INT NOT NULL,
  height INT NOT NULL,
  file_size_bytes INT NOT NULL,
  enhanced_url VARCHAR(1024) NULL,
  cloudfront_url VARCHAR(1024) NULL,
  status ENUM('uploaded','analyzing','analyzed','queued','processing','enhancing',
              'optimizing','completed','skipped','failed') NOT NULL DEFAULT 'uploaded',
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_product_images_image_id (image_id),
  KEY ix_product_images_seller_sku (seller_id, sku_id),
  KEY ix_product_images_sha (content_sha256),
  KEY ix_product_images_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS enhancement_jobs (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  job_id CHAR(32) NOT NULL,
  image_id CHAR(32) NOT NULL,
  status ENUM('queued','processing','completed','skipped','failed') NOT NULL DEFAULT 'queued',
  profile_name VARCHAR(64) NULL,
  profile_version VARCHAR(32) NULL,
  enhancement_params JSON NULL,
  processing_time_ms INT NULL,
  total_cost_usd DECIMAL(12,6) NOT NULL DEFAULT 0,
  ai_used BOOLEAN NOT NULL DEFAULT FALSE,
  started_at DATETIME(3) NULL,
  completed_at DATETIME(3) NULL,
  UNIQUE KEY uq_enhancement_jobs_job_id (job_id),
  KEY ix_enhancement_jobs_image (image_id),
  CONSTRAINT fk_enhancement_jobs_image FOREIGN KEY (image_id)
    REFERENCES product_images (image_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS processing_steps (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  job_id CHAR(32) NOT NULL,
  step_order INT NOT NULL,
  step_name VARCHAR(64) NOT NULL,
  method ENUM('local','ai') NOT NULL,
  model_id VARCHAR(128) NULL,
  success BOOLEAN NOT NULL,
  latency_ms INT NULL,
  cost_usd DECIMAL(12,6) NOT NULL DEFAULT 0,
  details TEXT NULL,
  UNIQUE KEY uq_processing_steps_job_order (job_id, step_order),
  CONSTRAINT fk_processing_steps_job FOREIGN KEY (job_id)
    REFERENCES enhancement_jobs (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS quality_metrics (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  image_id CHAR(32) NOT NULL,
  job_id CHAR(32) NULL,
  metric_type ENUM('before','after') NOT NULL,
  profile_name VARCHAR(64) NOT NULL,
  profile_version VARCHAR(32) NOT NULL,
  blur_score DOUBLE NULL,
  brightness DOUBLE NULL,
  contrast DOUBLE NULL,
  noise_level DOUBLE NULL,
  brisque_score DOUBLE NULL,
  background_complexity DOUBLE NULL,
  width INT NULL,
  height INT NULL,
  file_size_bytes INT NULL,
  overall_score DOUBLE NULL,
  quality_tier VARCHAR(16) NULL,
  issues JSON NULL,
  recommendations JSON NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_quality_metrics (image_id, metric_type, profile_name, profile_version),
  KEY ix_quality_metrics_job (job_id),
  CONSTRAINT fk_quality_metrics_image FOREIGN KEY (image_id)
    REFERENCES product_images (image_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ai_usage_logs (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  request_id CHAR(32) NOT NULL,
  job_id CHAR(32) NOT NULL,
  image_id CHAR(32) NOT NULL,
  model_id VARCHAR(128) NOT NULL,
  operation VARCHAR(64) NOT NULL,
  budget_day DATE NOT NULL,
  cost_usd DECIMAL(12,6) NOT NULL DEFAULT 0,
  latency_ms INT NULL,
  success BOOLEAN NOT NULL,
  error_message TEXT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_ai_usage_logs_request (request_id),
  KEY ix_ai_usage_logs_day (budget_day),
  KEY ix_ai_usage_logs_job (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
