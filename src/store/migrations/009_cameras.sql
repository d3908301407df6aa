-- 009: the camera registry and the cameras that saw each case.
--
-- id is the owner's own name for a camera; uid is ours, stable, and keys the
-- R*Tree (kept by the store in the same transaction, as for features: 004).
-- The R*Tree holds the view sector's extent, not the mounting point, so "which
-- cameras could see this place" and an OGC bbox filter are one lookup.
-- url keeps the credentials as given; url_public is the same URL without
-- them, for everyone who is not an admin and for the change log.
CREATE TABLE cameras (
  id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  uid         INTEGER NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  department  TEXT,                       -- 公安, 城管 …: as incidents name them
  url         TEXT NOT NULL,
  url_public  TEXT NOT NULL,
  lon         REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
  lat         REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
  heading     REAL NOT NULL CHECK (heading >= 0 AND heading < 360),
  fov         REAL NOT NULL CHECK (fov > 0 AND fov <= 360),
  range_m     REAL NOT NULL CHECK (range_m > 0),
  height_m    REAL,
  state       TEXT NOT NULL DEFAULT 'connecting' CHECK (state IN ('connecting', 'playing',
                'stalled', 'retrying', 'failed', 'disabled')),
  reason      TEXT,
  state_at    TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
SELECT AddGeometryColumn('cameras', 'geom', 4326, 'POINT', 'XY', 1);
SELECT AddGeometryColumn('cameras', 'sector', 4326, 'POLYGON', 'XY', 1);
CREATE VIRTUAL TABLE cameras_rtree USING rtree(uid, minx, maxx, miny, maxy);

-- The cameras whose sector held a case when it was reported, with what the
-- video engine later attaches (file paths, or why it could not). No foreign
-- key to cameras: a case keeps the record of what saw it after a camera goes.
CREATE TABLE incident_cameras (
  incident_id    INTEGER NOT NULL REFERENCES incidents(id),
  camera_id      TEXT NOT NULL,
  camera_name    TEXT NOT NULL,
  distance_m     REAL NOT NULL,
  bearing        REAL NOT NULL,
  snapshot       TEXT,
  snapshot_error TEXT,
  clip           TEXT,
  clip_error     TEXT,
  media_state    TEXT NOT NULL DEFAULT 'pending' CHECK (media_state IN ('pending', 'partial',
                   'done', 'failed', 'none')),
  PRIMARY KEY (incident_id, camera_id)
) WITHOUT ROWID;
CREATE INDEX incident_cameras_camera ON incident_cameras (camera_id);
