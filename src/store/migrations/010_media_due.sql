-- 010: the footage still owed is read once a second (src/api/incident_media.c):
-- a partial index holds only the pending rows, so that read does not walk
-- every case's cameras as the history grows.
CREATE INDEX incident_cameras_pending ON incident_cameras (incident_id, camera_id)
  WHERE media_state = 'pending';
