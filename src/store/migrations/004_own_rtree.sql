-- 004: the features' R*Tree is ours, kept in step by the store in the same
-- transaction as each write. SpatiaLite's trigger-maintained index prepared
-- SQL for every inserted row (RTreeAlign) and cost a third of a layer import.
SELECT DisableSpatialIndex('features', 'geom');
DROP TABLE IF EXISTS idx_features_geom;
CREATE VIRTUAL TABLE features_rtree USING rtree(uid, minx, maxx, miny, maxy);
INSERT INTO features_rtree SELECT uid, MbrMinX(geom), MbrMaxX(geom), MbrMinY(geom), MbrMaxY(geom)
  FROM features WHERE geom IS NOT NULL;
-- SpatiaLite's per-row triggers on features: time-stamp bookkeeping
-- (geometry_columns_time) and a type/SRID check the store already guarantees
-- (it writes only SRID 4326 MultiPolygons it built itself). Together they
-- cost another fifth of an import.
DROP TRIGGER IF EXISTS tmi_features_geom;
DROP TRIGGER IF EXISTS tmu_features_geom;
DROP TRIGGER IF EXISTS tmd_features_geom;
DROP TRIGGER IF EXISTS ggi_features_geom;
DROP TRIGGER IF EXISTS ggu_features_geom;
