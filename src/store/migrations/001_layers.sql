-- 001: spatial metadata, layers and their features, the change log.
SELECT InitSpatialMetadata(0, 'WGS84');

CREATE TABLE layers (
  name         TEXT PRIMARY KEY,          -- the collection id
  level        TEXT NOT NULL,             -- district … unit, dedicated, dept
  department   TEXT,                      -- for level 'dept': 城管, 环卫 …
  title        TEXT NOT NULL,
  version      INTEGER NOT NULL,
  feature_count INTEGER NOT NULL,
  fields       TEXT NOT NULL DEFAULT '[]', -- JSON array of property names
  bbox         TEXT,                      -- JSON [minx,miny,maxx,maxy]
  source       TEXT,
  source_crs   TEXT,
  imported_at  TEXT NOT NULL
);

CREATE TABLE features (
  uid          INTEGER PRIMARY KEY,
  layer        TEXT NOT NULL REFERENCES layers(name),
  fid          TEXT NOT NULL,             -- the feature id within its layer
  name         TEXT,
  code         TEXT,
  level        TEXT NOT NULL,
  parent_layer TEXT,
  parent_fid   TEXT,
  ancestors    TEXT NOT NULL DEFAULT '[]', -- JSON [{"level":…,"id":…}] from the top down
  props        TEXT NOT NULL DEFAULT '{}',
  UNIQUE (layer, fid)
);
SELECT AddGeometryColumn('features', 'geom', 4326, 'MULTIPOLYGON', 'XY', 1);
SELECT CreateSpatialIndex('features', 'geom');
CREATE INDEX features_layer_code ON features (layer, code);

CREATE TABLE change_log (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  ts     TEXT NOT NULL,
  topic  TEXT NOT NULL,
  id     TEXT NOT NULL,
  data   TEXT NOT NULL
);
