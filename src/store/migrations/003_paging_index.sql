-- 003: features in uid order per layer, so paging (OGC items, offset) reads
-- only the rows of the page instead of sorting the whole layer.
CREATE INDEX features_layer_uid ON features (layer, uid);
