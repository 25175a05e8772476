-- claimd schema, version 9: the audit table loses its (mac, at) index. No statement of
-- claimd, claimctl or the management API reads the audit by MAC (exports walk it by id),
-- and every claim wrote two entries into it (the initiate's row and the verify's). An
-- operator who searches the audit by MAC often can add an index of their own; the audit
-- rows themselves are unchanged.
DROP INDEX audit_mac_at;
