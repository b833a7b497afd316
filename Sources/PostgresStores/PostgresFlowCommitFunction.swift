extension PostgresFlowCommit {
    /// The SQLSTATE `hawser_flow_commit` raises when the fence's recorded epoch is not the one
    /// presented (`PostgresFlowStore` then lets `PostgresFencing` settle it and tries again).
    static let fenceMoved = "HW001"

    /// One segment of a group commit, in one call, so in one round trip: without a transaction
    /// around it the call is its own transaction, committed (and flushed to disk) before it
    /// returns. Made of the statements one per kind of write that were sent one by one before
    /// (eight round trips a commit with `BEGIN` and `COMMIT`), in the same order; PL/pgSQL keeps
    /// their plans per connection, and each statement sees the ones before it.
    ///
    /// Each write comes with its flow, so that the writes of a flow whose start is refused (its
    /// client request id names another flow, or it is in `refused` already) are left out. Returns
    /// the flows that hold the client request ids starts found taken. The call first proves, for
    /// each of `fence_resources` (none: an unfenced store), share-locking its row, that the epoch
    /// recorded is the one at the same place in `fence_epochs` (the steady state of
    /// `PostgresFencing.check`), and raises `fenceMoved` otherwise. (Version 5 of the schema: one
    /// fence before, `fence_resource` and `fence_epoch`.)
    ///
    /// Every statement finds a few rows by their keys, so the function plans without sequential
    /// scans, hash joins or merge joins (version 6): PL/pgSQL keeps a statement's plan for the
    /// connection's life, and a plan made on an empty database, where reading the whole table is
    /// cheapest, read all of `flows` and the journal in every commit as they grew, until an
    /// automatic ANALYZE happened to replan it.
    ///
    /// Version 8 adds `asked` (flows about to ask the notary, `notary_asks`), as a new overload:
    /// processes of the build before keep calling the version 7 function while a rolling upgrade
    /// runs, so it stays. (A later version that drops either must name its argument types.)
    /// `CREATE OR REPLACE`: an upgrade from before version 5 has made this one already.
    static let function = """
        CREATE OR REPLACE FUNCTION hawser_flow_commit(
            fence_resources text[], fence_epochs bigint[], refused text[],
            start_id text[], start_key text[], start_has_key boolean[], start_name text[], start_arguments bytea[],
            start_status text[], start_attempts bigint[], start_created bigint[], start_updated bigint[],
            journal_flow text[], journal_sequence bigint[], journal_kind text[], journal_descriptor text[], journal_result bytea[],
            consumed_flow text[], consumed_ref text[], consumed_tx text[],
            produced_flow text[], produced_ref text[], produced_type text[], produced_owner text[], produced_data bytea[],
            produced_amount bigint[], produced_has_amount boolean[],
            released_flow text[], released_holder text[],
            message_flow text[], message_ids text[], message_session text[], message_recipient text[], message_payload bytea[],
            state_flow text[], state_status text[], state_result bytea[], state_has_result boolean[], state_error text[],
            state_has_error boolean[], state_attempts bigint[], state_retry_at bigint[], state_has_retry boolean[],
            state_updated bigint[],
            compacted text[], compaction_keeps text, markers_set text[], markers_cleared text[], asked text[])
        RETURNS TABLE (id text, client_request_id text, name text, arguments bytea, status text, result bytea, error text,
                       attempts bigint, retry_at bigint, created_at bigint, updated_at bigint)
        LANGUAGE plpgsql
        SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
        AS $$
        #variable_conflict use_column
        DECLARE
            recorded bigint;
            inserted text[];
            taken text[];
            holder_key text[] := '{}';
            holder_id text[] := '{}';
        BEGIN
            FOR i IN 1 .. coalesce(cardinality(fence_resources), 0) LOOP
                SELECT f.epoch INTO recorded FROM hawser_fence f WHERE f.resource = fence_resources[i] FOR SHARE;
                IF recorded IS DISTINCT FROM fence_epochs[i] THEN
                    RAISE EXCEPTION 'the fence of % records epoch %, not %', fence_resources[i], recorded, fence_epochs[i]
                        USING ERRCODE = 'HW001';
                END IF;
            END LOOP;
            IF cardinality(start_id) > 0 THEN
                WITH new AS (
                    INSERT INTO flows (id, client_request_id, name, arguments, status, attempts, created_at, updated_at)
                    SELECT s.id, CASE WHEN s.has_key THEN s.key END, s.name, s.arguments, s.status, s.attempts, s.created_at,
                           s.updated_at
                    FROM unnest(start_id, start_key, start_has_key, start_name, start_arguments, start_status, start_attempts,
                                start_created, start_updated)
                        WITH ORDINALITY AS s(id, key, has_key, name, arguments, status, attempts, created_at, updated_at, position)
                    ORDER BY s.position
                    ON CONFLICT (client_request_id) DO NOTHING RETURNING flows.id)
                SELECT coalesce(array_agg(new.id), '{}') INTO inserted FROM new;
                -- Nearly always every start is new. Otherwise the flows that hold the keys the
                -- others found taken are returned, found by the key's index (a join with the
                -- starts could scan every flow).
                IF cardinality(inserted) < cardinality(start_id) THEN
                    taken := ARRAY(SELECT s.key FROM unnest(start_id, start_key, start_has_key) AS s(id, key, has_key)
                                   WHERE s.has_key AND s.id <> ALL (inserted));
                    FOR id, client_request_id, name, arguments, status, result, error, attempts, retry_at, created_at, updated_at IN
                        SELECT f.id, f.client_request_id, f.name, f.arguments, f.status, f.result, f.error, f.attempts, f.retry_at,
                               f.created_at, f.updated_at
                        FROM flows f WHERE f.client_request_id = ANY (taken)
                    LOOP
                        RETURN NEXT;
                        holder_key := holder_key || client_request_id;
                        holder_id := holder_id || id;
                    END LOOP;
                    refused := refused || ARRAY(
                        SELECT s.id FROM unnest(start_id, start_key) AS s(id, key) JOIN unnest(holder_key, holder_id) AS h(key, id)
                            ON h.key = s.key
                        WHERE h.id <> s.id);
                END IF;
            END IF;
            IF cardinality(journal_flow) > 0 THEN
                INSERT INTO journal (flow_id, sequence, kind, descriptor, result)
                SELECT j.flow_id, j.sequence, j.kind, j.descriptor, j.result
                FROM unnest(journal_flow, journal_sequence, journal_kind, journal_descriptor, journal_result)
                    WITH ORDINALITY AS j(flow_id, sequence, kind, descriptor, result, position)
                WHERE j.flow_id <> ALL (refused)
                ORDER BY j.position;
            END IF;
            IF cardinality(asked) > 0 THEN
                INSERT INTO notary_asks (flow_id) SELECT a.flow_id FROM unnest(asked) AS a(flow_id) WHERE a.flow_id <> ALL (refused)
                ON CONFLICT DO NOTHING;
            END IF;
            IF cardinality(consumed_flow) > 0 THEN
                -- The first consumption of a ref wins, as applied one by one.
                UPDATE vault_states SET consumed_by = c.tx_id, locked_by = NULL
                FROM (SELECT DISTINCT ON (u.ref) u.ref, u.tx_id
                      FROM unnest(consumed_flow, consumed_ref, consumed_tx) WITH ORDINALITY AS u(flow_id, ref, tx_id, position)
                      WHERE u.flow_id <> ALL (refused) ORDER BY u.ref, u.position) AS c
                WHERE vault_states.ref = c.ref AND vault_states.consumed_by IS NULL;
            END IF;
            IF cardinality(produced_flow) > 0 THEN
                INSERT INTO vault_states (ref, type, owner, data, amount)
                SELECT p.ref, p.type, p.owner, p.data, CASE WHEN p.has_amount THEN p.amount END
                FROM unnest(produced_flow, produced_ref, produced_type, produced_owner, produced_data, produced_amount,
                            produced_has_amount)
                    WITH ORDINALITY AS p(flow_id, ref, type, owner, data, amount, has_amount, position)
                WHERE p.flow_id <> ALL (refused)
                ORDER BY p.position
                ON CONFLICT (ref) DO NOTHING;
            END IF;
            IF cardinality(released_flow) > 0 THEN
                UPDATE vault_states SET locked_by = NULL
                WHERE vault_states.locked_by = ANY (ARRAY(
                    SELECT r.holder FROM unnest(released_flow, released_holder) AS r(flow_id, holder) WHERE r.flow_id <> ALL (refused)));
            END IF;
            IF cardinality(message_flow) > 0 THEN
                INSERT INTO outbox (message_id, session, recipient, payload)
                SELECT m.message_id, m.session, m.recipient, m.payload
                FROM unnest(message_flow, message_ids, message_session, message_recipient, message_payload)
                    WITH ORDINALITY AS m(flow_id, message_id, session, recipient, payload, position)
                WHERE m.flow_id <> ALL (refused)
                ORDER BY m.position
                ON CONFLICT (message_id) DO NOTHING;
            END IF;
            IF cardinality(state_flow) > 0 THEN
                UPDATE flows SET status = s.status, result = CASE WHEN s.has_result THEN s.result END,
                    error = CASE WHEN s.has_error THEN s.error END, attempts = s.attempts,
                    retry_at = CASE WHEN s.has_retry THEN s.retry_at END, updated_at = s.updated_at
                FROM unnest(state_flow, state_status, state_result, state_has_result, state_error, state_has_error, state_attempts,
                            state_retry_at, state_has_retry, state_updated)
                    AS s(id, status, result, has_result, error, has_error, attempts, retry_at, has_retry, updated_at)
                WHERE flows.id = s.id AND s.id <> ALL (refused);
            END IF;
            IF cardinality(compacted) > 0 THEN
                DELETE FROM journal
                WHERE journal.flow_id = ANY (compacted) AND journal.flow_id <> ALL (refused) AND journal.kind <> compaction_keeps;
                DELETE FROM notary_asks WHERE notary_asks.flow_id = ANY (compacted) AND notary_asks.flow_id <> ALL (refused);
            END IF;
            IF cardinality(markers_set) > 0 THEN
                INSERT INTO replay_markers (flow_id) SELECT unnest(markers_set) ON CONFLICT DO NOTHING;
            END IF;
            IF cardinality(markers_cleared) > 0 THEN
                DELETE FROM replay_markers WHERE replay_markers.flow_id = ANY (markers_cleared);
            END IF;
        END
        $$
        """
}
