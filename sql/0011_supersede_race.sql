-- claimd schema, version 11: a re-claim supersedes the node's earlier certificates even
-- when another claim of the same node commits while it runs. The claim's statement sees
-- the database as of its start, so a certificate another claim committed meanwhile was
-- invisible to its supersede and stayed valid (two, or more, valid certificates for one
-- node after claims of one device overlapped, on one daemon or several). The supersede
-- now runs after the new certificate is inserted, as a trigger whose UPDATE sees every
-- claim committed before it: overlapping claims of one node wait for each other at the
-- node's row, so the later one finds and revokes the earlier one's certificate.
--
-- The statement that claims asks for the supersede by setting, for its transaction,
-- claimd.supersede_reason (an RFC 5280 reason code; '' or unset: no supersede) and
-- claimd.superseded_by (the revoked_by note). Inserts that set neither (user verifies,
-- which supersede in their own statement and are serialized by their pending node,
-- imports of history, tools) fire nothing.
CREATE FUNCTION certificates_supersede() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE certificates
       SET revoked_at = now(),
           revocation_reason = current_setting('claimd.supersede_reason')::smallint,
           revoked_by = nullif(current_setting('claimd.superseded_by', true), '')
     WHERE node_id = NEW.node_id AND revoked_at IS NULL AND serial <> NEW.serial;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION certificates_supersede() IS 'Revokes the node''s other valid certificates after a claim''s insert, with the reason in claimd.supersede_reason.';
CREATE TRIGGER certificates_supersede AFTER INSERT ON certificates FOR EACH ROW
    WHEN (coalesce(current_setting('claimd.supersede_reason', true), '') <> '')
    EXECUTE FUNCTION certificates_supersede();
