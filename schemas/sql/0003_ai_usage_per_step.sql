-- One ai_usage_logs row per AI step of a request (a request may hold several AI steps),
-- mirroring the AISpendSettled events on images.ai.budget; the first settlement of a
-- request wins, as in the budget table.
ALTER TABLE ai_usage_logs
  DROP INDEX uq_ai_usage_logs_request,
  ADD COLUMN step_order INT NOT NULL DEFAULT 0 AFTER request_id,
  ADD COLUMN reservation_id CHAR(32) NULL AFTER step_order,
  ADD COLUMN cache_hit BOOLEAN NOT NULL DEFAULT FALSE AFTER success,
  ADD COLUMN attempts INT NOT NULL DEFAULT 0 AFTER cache_hit,
  ADD UNIQUE KEY uq_ai_usage_logs_step (request_id, step_order);
