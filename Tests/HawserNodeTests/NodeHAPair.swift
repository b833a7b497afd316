import AsyncHTTPClient
import Foundation
import HawserNode
import HawserTestSupport
import NIOCore
import Testing

/// Two hot-warm `hawser node run` processes, A and B, on one PostgreSQL node database, elected
/// through a ZooKeeper ensemble, using a remote notary. Each logs in to the database as a role of
/// its own (`node_a`, `node_b`), so that the audit triggers `installAudit` adds can name the
/// writer of every row; each writes its log (info) to `root/<id>.log`, where it names the epochs
/// it wins.
final class NodeHAPair {
    static let ids = ["A", "B"]
    let root: String
    let postgres: PostgresServer
    let database: String
    let ports: [String: Int]
    /// The options that name the pair's election to `hawser admin`.
    let electionOptions: [String]
    private var processes: [String: HawserProcess] = [:]

    init(root: String, postgres: PostgresServer, ensemble: ZooKeeperEnsemble, notary: String) async throws {
        self.root = root
        self.postgres = postgres
        database = "ledger"
        try await postgres.sql("CREATE DATABASE \(database)")
        for id in Self.ids { try await postgres.sql("CREATE ROLE \(Self.role(id)) SUPERUSER LOGIN") }
        let free = try FreePorts.take(2)
        ports = ["A": free[0], "B": free[1]]
        try "hawser-test:pw-\(UUID().uuidString.prefix(8))\n".write(toFile: root + "/zk.credentials", atomically: true, encoding: .utf8)
        var election = ElectionSettings()
        election.zookeeper = ensemble.connectString
        election.zookeeperCredentials = "zk.credentials"
        election.election = "fault"
        election.sessionTimeoutMs = 2_000
        // The production default: a node that took over keeps the shard long enough for the flows it
        // resumed to write. A shorter term clears their replay markers when it steps down, but a
        // successor that claims the database before that write (a quick hand-back) still parks
        // them (docs/node.md, "High availability").
        election.holdDownMs = 10_000
        electionOptions = ["--zookeeper", ensemble.connectString, "--zookeeper-credentials", root + "/zk.credentials",
                           "--election", "fault", "--session-timeout-ms", "2000", "--hold-down-ms", "10000"]
        try writeRemoteNodeFiles(in: root, urls: [notary]) { $0.notary.maxAttempts = 2; $0.notary.timeoutMillis = 2_000 }
        let base = try NodeConfiguration.load(root + "/node.json")
        for id in Self.ids {
            var configuration = base
            configuration.listen.port = ports[id]!
            configuration.dataDirectory = "data-\(id)"
            configuration.database.kind = .postgres
            configuration.database.url = "postgres://\(Self.role(id))@127.0.0.1:\(postgres.port)/\(database)"
            configuration.database.connectTimeoutMillis = 60_000
            configuration.ha.mode = .hotWarm
            configuration.ha.id = id
            configuration.ha.advertise = [url(id)]
            configuration.ha.election = election
            try configuration.save(root + "/\(id).json")
        }
    }

    static func role(_ id: String) -> String { "node_\(id.lowercased())" }
    func url(_ id: String) -> String { "http://127.0.0.1:\(ports[id]!)" }
    func log(_ id: String) -> String { root + "/\(id).log" }

    func start(_ id: String) async throws {
        // info names the epochs won; HAWSER_FAULT_LOG_LEVEL=debug shows more of a failing run.
        let level = ProcessInfo.processInfo.environment["HAWSER_FAULT_LOG_LEVEL"] ?? "info"
        processes[id] = try await HawserProcess.node(config: root + "/\(id).json", logLevel: level, log: log(id)).0
    }

    func kill(_ id: String) { processes.removeValue(forKey: id)?.kill() }
    func pause(_ id: String) { processes[id]?.pause() }
    func resume(_ id: String) { processes[id]?.resume() }
    func isRunning(_ id: String) -> Bool { processes[id]?.isRunning ?? false }

    /// SIGTERM to both; true if both exited cleanly.
    func stop() -> Bool {
        let statuses = processes.values.map { $0.terminate() }
        processes = [:]
        return statuses.allSatisfy { $0 == 0 }
    }

    /// Records every write to the node's tables, in the order the fence serialises them: the table,
    /// the key, a flow's status, the writing role and the fence's epoch inside the transaction
    /// (which a fenced writer has share-locked, so it is the epoch that writer presented, unless
    /// the fence let a deposed writer through). The fence's own changes record the new epoch.
    func installAudit() async throws {
        try await postgres.sql("""
            CREATE TABLE ha_audit (seq bigserial PRIMARY KEY, tbl text, key text, status text, writer text, epoch bigint);
            CREATE FUNCTION ha_audit_write() RETURNS trigger AS $$
            DECLARE r jsonb := to_jsonb(NEW);
            BEGIN
              INSERT INTO ha_audit (tbl, key, status, writer, epoch) VALUES (TG_TABLE_NAME,
                coalesce(r->>'id', r->>'flow_id', r->>'ref', r->>'resource'), r->>'status', current_user,
                CASE WHEN TG_TABLE_NAME = 'hawser_fence' THEN (r->>'epoch')::bigint
                     ELSE (SELECT epoch FROM hawser_fence WHERE resource = 'node/0') END);
              RETURN NULL;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON flows FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON journal FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON vault_states FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON hawser_fence FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            """, database: database)
    }

    /// The history the database and the nodes' logs hold, with the clients' acknowledged starts.
    func history(starts: [NodeHAHistory.Start]) async throws -> NodeHAHistory {
        var history = NodeHAHistory()
        history.starts = starts
        let writers = Dictionary(uniqueKeysWithValues: Self.ids.map { (Self.role($0), $0) })
        history.writes = try await postgres.rows("SELECT tbl, key, coalesce(status, ''), writer, coalesce(epoch::text, '') FROM ha_audit ORDER BY seq",
                                           database: database).map { r in
            .init(table: r[0], key: r[1], status: r[2].isEmpty ? nil : r[2], writer: writers[r[3]] ?? r[3], epoch: UInt64(r[4]))
        }
        history.flows = try await postgres.rows("""
            SELECT id, coalesce(client_request_id, ''), name, convert_from(arguments, 'UTF8'), status, coalesce(convert_from(result, 'UTF8'), ''),
                   coalesce(error, '')
            FROM flows ORDER BY seq
            """, database: database).map { r in
            let arguments = (try? JSONSerialization.jsonObject(with: Data(r[3].utf8))) as? [String: Any] ?? [:]
            let result = (try? JSONSerialization.jsonObject(with: Data(r[5].utf8))) as? [String: Any]
            let owner = arguments["owner"] as? String ?? "", amount = (arguments["amount"] as? NSNumber)?.int64Value ?? 0
            return .init(id: r[0], clientRequestId: r[1].isEmpty ? nil : r[1], status: r[4], txId: result?["txId"] as? String,
                         tokens: r[2] == "MoveTokens" ? .move(from: owner, to: arguments["newOwner"] as? String ?? "", amount: amount)
                                                      : .issue(owner: owner, amount: amount),
                         error: r[6].isEmpty ? nil : r[6])
        }
        for row in try await postgres.rows("SELECT owner, sum(amount) FROM vault_states WHERE type = 'token' AND consumed_by IS NULL GROUP BY owner",
                                     database: database) {
            history.balances[row[0]] = Int64(row[1])
        }
        for id in Self.ids { history.won[id] = try wonEpochs(id) }
        return history
    }

    /// The epochs node `id` logged winning ("won the shard ... epoch=N").
    func wonEpochs(_ id: String) throws -> Set<UInt64> {
        let text = try String(contentsOfFile: log(id), encoding: .utf8)
        var epochs = Set<UInt64>()
        for line in text.split(separator: "\n") where line.contains("won the shard") {
            guard let range = line.range(of: "epoch=") else { continue }
            if let epoch = UInt64(line[range.upperBound...].prefix { $0.isNumber }) { epochs.insert(epoch) }
        }
        return epochs
    }

    /// Flows in the database that have not ended.
    func unfinished() async throws -> Int {
        Int(try await postgres.rows("SELECT count(*) FROM flows WHERE status IN ('running', 'hospitalised')", database: database)[0][0]) ?? -1
    }

    /// What `/health/ready` of node `id` says now: its status, or nil without an answer.
    func readiness(_ id: String) async -> String? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url(id) + "/health/ready"), timeout: .seconds(2)),
              let body = try? await response.body.collect(upTo: 1 << 16) else { return nil }
        let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        if let status = object?["status"] as? String { return status }
        return ((object?["error"] as? [String: Any])?["message"] as? String).map { "not_ready: \($0)" }
    }

    /// Polls both nodes until `condition` holds for their readiness (within two minutes); returns it.
    @discardableResult
    func awaitState(_ what: String, sourceLocation: SourceLocation = #_sourceLocation,
               _ condition: ([String: String]) -> Bool) async throws -> [String: String] {
        let deadline = ContinuousClock.now + .seconds(120)
        var seen = [String: String]()
        while ContinuousClock.now < deadline {
            seen = [:]
            for id in Self.ids { seen[id] = await readiness(id) ?? "down" }
            if condition(seen) { return seen }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the pair never got to: \(what); last seen \(seen)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// The node that answers ready, once one does.
    func awaitActive(sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let seen = try await awaitState("one node ready", sourceLocation: sourceLocation) { $0.values.contains("ready") }
        return Self.ids.first { seen[$0] == "ready" }!
    }
}
