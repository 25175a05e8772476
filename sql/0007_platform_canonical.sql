-- claimd schema, version 7: registered platforms in the canonical form that every entry
-- point now uses (src/core/canon.c: lower case, '-' and '_' removed), so that a device
-- imported before as 'esp32-s3' (the flashing tools' spelling) matches the firmware's
-- 'esp32s3' when it initiates. Names that are no known target are left as they are:
-- such a device was never claimable and still is not; 'claimctl devices list' shows it.
UPDATE devices
   SET platform = replace(replace(lower(platform), '-', ''), '_', ''), updated_at = now()
 WHERE platform <> replace(replace(lower(platform), '-', ''), '_', '')
   AND replace(replace(lower(platform), '-', ''), '_', '') <> '';
