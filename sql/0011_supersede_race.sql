-- claimd schema, version 11: a re-claim supersedes the node's earlier certificates even
-- when another claim of the same node commits while it runs. A claim's statement sees
-- the database as of its start, so a certificate another claim committed meanwhile was
-- invisible to its supersede and stayed valid (two, or more, valid certificates for one
-- node after claims of one device overlapped, on one daemon or several). Overlapping
-- claims of one node meet at the node's row, where the later one waits for the earlier
-- one's commit; the statement now compares the row it updates there with the row it
-- saw at its start, and when another transaction changed it in between, calls this
-- function, which fails the statement as a serialization failure (SQLSTATE 40001).
-- Nothing of it is kept; claimd runs it again after its backoff (as for any 40001), and the
-- statement, starting after the other claim's commit, sees and supersedes its
-- certificate.
CREATE FUNCTION claimd_node_changed() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the node was changed by another transaction while this claim ran'
        USING ERRCODE = 'serialization_failure';
END $$;
COMMENT ON FUNCTION claimd_node_changed() IS 'Fails the calling statement with SQLSTATE 40001; a claim calls it when the node''s row changed after the claim''s snapshot.';
