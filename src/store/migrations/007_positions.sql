-- 007: grid workers' trackers, their positions (fixes), assigned grids, alerts.
CREATE TABLE devices (
  device_id   TEXT PRIMARY KEY,            -- what the tracker sends as id / device_id
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  crs         TEXT NOT NULL DEFAULT 'EPSG:4326',  -- of its fixes when they name none
  label       TEXT,
  created_at  TEXT NOT NULL,
  disabled    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_user ON devices (user_id);

-- The grids a worker patrols (feature ids of the grid level).
CREATE TABLE worker_grids (
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  grid_id     TEXT NOT NULL,
  PRIMARY KEY (user_id, grid_id)
) WITHOUT ROWID;

-- One row a fix. t is the device's time in ms (UTC); a worker has at most one
-- fix a millisecond, so a fix sent twice (a retry, an overlapping import) is
-- stored once. Coordinates are EPSG:4326 whatever the device sent.
CREATE TABLE positions (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL,
  t           INTEGER NOT NULL,
  lon         REAL NOT NULL,
  lat         REAL NOT NULL,
  speed       REAL,                        -- m/s
  bearing     REAL,                        -- degrees
  altitude    REAL,                        -- m
  accuracy    REAL,                        -- m
  batt        REAL,                        -- percent
  sos         INTEGER NOT NULL DEFAULT 0,
  device_id   TEXT,
  source      TEXT NOT NULL,               -- osmand, traccar-json, batch, gpx, plt, csv
  grid_id     TEXT,                        -- geotagged when stored
  community_id TEXT,
  street_id   TEXT,
  received_at INTEGER NOT NULL             -- ms
);
CREATE UNIQUE INDEX positions_user_t ON positions (user_id, t);

CREATE TABLE alerts (
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind = 'outside_grid' OR kind = 'silent' OR kind = 'sos'),
  user_id     INTEGER NOT NULL,
  started_at  INTEGER NOT NULL,            -- ms
  ended_at    INTEGER,                     -- ms; NULL while it lasts
  lon         REAL,
  lat         REAL,
  data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_open ON alerts (user_id, kind) WHERE ended_at IS NULL;
