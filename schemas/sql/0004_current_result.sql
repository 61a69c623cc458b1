-- Results are versioned: enhancement_jobs and quality_metrics keep one row per
-- (image, profile name, profile version). product_images names the current one: the
-- most recent completion (a redelivered older completion never takes it back).
ALTER TABLE product_images
  ADD COLUMN current_job_id CHAR(32) NULL,
  ADD COLUMN current_profile_name VARCHAR(64) NULL,
  ADD COLUMN current_profile_version VARCHAR(32) NULL,
  ADD COLUMN current_completed_at DATETIME(3) NULL;
