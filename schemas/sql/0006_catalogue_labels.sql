-- Catalogue ids as sellers have them ("Müller GmbH", "SKU 12/B"): the key columns keep
-- the event keys (streams/identity.py: the id itself when it matches the events'
-- external_id pattern, else 'u-' + 32 hex of its SHA-256), so joins, the seller/SKU index
-- and image ids are unchanged; these columns hold the id itself, NFC, only when it
-- differs from its key (NULL otherwise). Display only: never part of a path or a key.
-- Binary collation: the label is shown as stored, and 'Müller' and 'muller' are two ids.
ALTER TABLE product_images
  ADD COLUMN seller_label VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
    AFTER seller_id,
  ADD COLUMN product_group_label VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
    AFTER product_group_id,
  ADD COLUMN sku_label VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
    AFTER sku_id;
