-- Results whose CDN paths were invalidated, by the cdn_sink's source token (a hash of the
-- completion's id and content): a worker that restarts, or a completion emitted again,
-- does not invalidate (and pay for) the same paths twice.
CREATE TABLE IF NOT EXISTS cdn_invalidations (
  source_token CHAR(32) NOT NULL PRIMARY KEY,
  caller_reference VARCHAR(128) NOT NULL,
  invalidated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
