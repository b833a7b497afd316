import AsyncHTTPClient
import Foundation
import HawserNode
import HawserTestSupport
import NIOCore
import Testing

/// Two hot-warm `hawser node run` processes, A and B, on one PostgreSQL node database, elected
/// through a ZooKeeper ensemble, using a remote notary; or (`hotHot`) hot-hot workers, elected
/// through PostgreSQL leases in the same database or through a ZooKeeper ensemble. Each logs in to the database as a role of its
/// own (`node_a`, `node_b`), so that the audit triggers `installAudit` adds can name the writer of
/// every row; each writes its log (info) to `root/<id>.log`, where it names the epochs it wins.
final class NodeHAPair {
    static let ids = ["A", "B"]
    let root: String
    let postgres: PostgresServer
    let database: String
    /// The processes of the set, started or not: configured at `init`, or `add`ed later.
    private(set) var ids: [String]
    private(set) var ports: [String: Int] = [:]
    /// The options that name the pair's election to `hawser admin`.
    let electionOptions: [String]
    /// Hot-hot: the partition count; nil for a hot-warm pair.
    let partitions: Int?
    private let base: NodeConfiguration
    private var processes: [String: HawserProcess] = [:]

    /// A hot-warm pair elected through `ensemble`.
    convenience init(root: String, postgres: PostgresServer, ensemble: ZooKeeperEnsemble, notary: String) async throws {
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
        try await self.init(root: root, postgres: postgres, notary: notary, ids: Self.ids, election: election,
                            electionOptions: ["--zookeeper", ensemble.connectString, "--zookeeper-credentials", root + "/zk.credentials",
                                              "--election", "fault", "--session-timeout-ms", "2000", "--hold-down-ms", "10000"])
    }

    /// Hot-hot workers `ids` with `partitions`, elected through PostgreSQL leases in the node database,
    /// or through `ensemble` if given (`holdDownMs` short, so that the partitions move during a run),
    /// on the NATS `bus` if given.
    convenience init(root: String, postgres: PostgresServer, notary: String, workers ids: [String], partitions: Int,
                     bus: [String]? = nil, ensemble: ZooKeeperEnsemble? = nil) async throws {
        var election = ElectionSettings()
        election.election = "fault"
        election.holdDownMs = 2_000
        let options: [String]
        if let ensemble {
            try "hawser-test:pw-\(UUID().uuidString.prefix(8))\n".write(toFile: root + "/zk.credentials", atomically: true, encoding: .utf8)
            election.zookeeper = ensemble.connectString
            election.zookeeperCredentials = "zk.credentials"
            election.sessionTimeoutMs = 2_000
            options = ["--zookeeper", ensemble.connectString, "--zookeeper-credentials", root + "/zk.credentials", "--election", "fault",
                       "--session-timeout-ms", "2000"]
        } else {
            election.postgres = "postgres://hawser@127.0.0.1:\(postgres.port)/ledger"
            options = ["--postgres", election.postgres!, "--election", "fault"]
        }
        try await self.init(root: root, postgres: postgres, notary: notary, ids: ids, election: election, electionOptions: options,
                            partitions: partitions, bus: bus)
    }

    private init(root: String, postgres: PostgresServer, notary: String, ids: [String], election: ElectionSettings,
                 electionOptions: [String], partitions: Int? = nil, bus: [String]? = nil) async throws {
        self.root = root
        self.postgres = postgres
        self.ids = []
        self.electionOptions = electionOptions
        self.partitions = partitions
        database = "ledger"
        try await postgres.sql("CREATE DATABASE \(database)")
        try writeRemoteNodeFiles(in: root, urls: [notary]) { $0.notary.maxAttempts = 2; $0.notary.timeoutMillis = 2_000 }
        var base = try NodeConfiguration.load(root + "/node.json")
        base.database.kind = .postgres
        base.database.connectTimeoutMillis = 60_000
        base.ha.mode = partitions == nil ? .hotWarm : .hotHot
        base.ha.partitions = partitions
        base.ha.election = election
        base.ha.bus = bus.map { BusSettings(servers: $0) }
        self.base = base
        for id in ids { try await add(id) }
    }

    /// Hot-hot processes with the rpc role alone (RPC workers): they write flows' starts unfenced.
    private(set) var rpcWorkers: Set<String> = []

    /// Configures one more process, `id` (its role, port and configuration file; in hot-hot its
    /// `roles`, all unless given); `start` starts it.
    func add(_ id: String, roles: Set<HAConfiguration.Role>? = nil) async throws {
        try await postgres.sql("CREATE ROLE \(Self.role(id)) SUPERUSER LOGIN")
        let port = try FreePorts.take(1)[0]
        var configuration = base
        configuration.listen.port = port
        configuration.dataDirectory = "data-\(id)"
        configuration.database.url = "postgres://\(Self.role(id))@127.0.0.1:\(postgres.port)/\(database)"
        configuration.ha.id = id
        configuration.ha.advertise = ["http://127.0.0.1:\(port)"]
        configuration.ha.roles = roles
        if roles == [.rpc] { rpcWorkers.insert(id) }
        try configuration.save(root + "/\(id).json")
        ids.append(id)
        ports[id] = port
    }

    static func role(_ id: String) -> String { "node_\(id.lowercased())" }
    func url(_ id: String) -> String { "http://127.0.0.1:\(ports[id]!)" }
    func log(_ id: String) -> String { root + "/\(id).log" }

    func start(_ id: String) async throws {
        // info names the epochs won; HAWSER_FAULT_LOG_LEVEL=debug shows more of a failing run.
        let level = ProcessInfo.processInfo.environment["HAWSER_FAULT_LOG_LEVEL"] ?? "info"
        do {
            processes[id] = try await HawserProcess.node(config: root + "/\(id).json", logLevel: level, log: log(id)).0
        } catch {
            let tail = ((try? String(contentsOfFile: log(id), encoding: .utf8)) ?? "").split(separator: "\n").suffix(10)
            Issue.record("\(id) did not start: \(error); the end of its log:\n\(tail.joined(separator: "\n"))")
            throw error
        }
    }

    func kill(_ id: String) { processes.removeValue(forKey: id)?.kill() }
    func pause(_ id: String) { processes[id]?.pause() }
    func resume(_ id: String) { processes[id]?.resume() }
    func isRunning(_ id: String) -> Bool { processes[id]?.isRunning ?? false }

    /// SIGTERM to `id`; true if it exited cleanly.
    func stop(_ id: String) async -> Bool {
        guard let process = processes.removeValue(forKey: id) else { return true }
        return await process.terminate() == 0
    }

    /// SIGTERM to every process; true if all exited cleanly.
    func stop() async -> Bool {
        let stopping = Array(processes.values)
        processes = [:]
        var clean = true
        for process in stopping where await process.terminate() != 0 { clean = false }
        return clean
    }

    /// Records every write to the node's tables, in the order the fence serialises them: the table,
    /// the key, a flow's status, the writing role and the epoch of the fence that guards the row
    /// inside the transaction (which a fenced writer has share-locked, so it is the epoch that
    /// writer presented, unless the fence let a deposed writer through), with that fence's resource.
    /// The fence's own changes record the new epoch. In hot-hot the vault is not audited: its rows
    /// name no flow, so no partition (token conservation still checks it).
    func installAudit() async throws {
        try await postgres.sql("""
            CREATE TABLE ha_audit (seq bigserial PRIMARY KEY, tbl text, key text, status text, writer text, epoch bigint, resource text);
            -- The fence that guards a flow: the shard's, or in hot-hot its partition's (FNV-1a 64 of
            -- the id mod the count, docs/node.md; in numeric, which does not overflow).
            CREATE FUNCTION ha_resource(id text) RETURNS text AS $$
            DECLARE h numeric := 14695981039346656037; bytes bytea := convert_to(id, 'UTF8'); low int;
            BEGIN
              IF \(partitions.map(String.init) ?? "NULL")::int IS NULL THEN RETURN 'node/0'; END IF;
              FOR i IN 0 .. length(bytes) - 1 LOOP
                low := (h % 256)::int;
                h := (h - low + (low # get_byte(bytes, i))) * 1099511628211 % 18446744073709551616;
              END LOOP;
              RETURN 'node/p' || (h % \(partitions ?? 1))::text;
            END $$ LANGUAGE plpgsql IMMUTABLE;
            CREATE FUNCTION ha_audit_write() RETURNS trigger AS $$
            DECLARE r jsonb := to_jsonb(NEW);
            BEGIN
              INSERT INTO ha_audit (tbl, key, status, writer, epoch, resource) VALUES (TG_TABLE_NAME,
                coalesce(r->>'id', r->>'flow_id', r->>'ref', r->>'resource'), r->>'status', current_user,
                CASE WHEN TG_TABLE_NAME = 'hawser_fence' THEN (r->>'epoch')::bigint
                     ELSE (SELECT epoch FROM hawser_fence WHERE resource = ha_resource(coalesce(r->>'id', r->>'flow_id'))) END,
                CASE WHEN TG_TABLE_NAME = 'hawser_fence' THEN r->>'resource' ELSE ha_resource(coalesce(r->>'id', r->>'flow_id')) END);
              RETURN NULL;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON flows FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON journal FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            \(partitions == nil ? "CREATE TRIGGER audit AFTER INSERT OR UPDATE ON vault_states FOR EACH ROW EXECUTE FUNCTION ha_audit_write();" : "")
            CREATE TRIGGER audit AFTER INSERT OR UPDATE ON hawser_fence FOR EACH ROW EXECUTE FUNCTION ha_audit_write();
            """, database: database)
    }

    /// The history the database and the nodes' logs hold, with the clients' acknowledged starts.
    func history(starts: [NodeHAHistory.Start]) async throws -> NodeHAHistory {
        var history = NodeHAHistory()
        history.starts = starts
        history.rpcWorkers = rpcWorkers
        let writers = Dictionary(uniqueKeysWithValues: ids.map { (Self.role($0), $0) })
        history.writes = try await postgres.rows("SELECT tbl, key, coalesce(status, ''), writer, coalesce(epoch::text, ''), resource FROM ha_audit ORDER BY seq",
                                           database: database).map { r in
            .init(table: r[0], key: r[1], status: r[2].isEmpty ? nil : r[2], writer: writers[r[3]] ?? r[3], epoch: UInt64(r[4]), resource: r[5])
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
        for id in ids { history.won[id] = try wonEpochs(id) }
        return history
    }

    /// The epochs node `id` logged winning ("won the shard ... epoch=N").
    func wonEpochs(_ id: String) throws -> Set<NodeHAHistory.Term> { try NodeHAPair.wonTerms(inLog: log(id)) }

    /// The terms a node's log at `path` says it won: "won the shard" lines, with `epoch=N` and, in
    /// hot-hot, `shard=p<k>` (the term is then of resource `node/p<k>`).
    static func wonTerms(inLog path: String) throws -> Set<NodeHAHistory.Term> {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var terms = Set<NodeHAHistory.Term>()
        for line in text.split(separator: "\n") where line.contains("won the shard") {
            func value(_ key: String) -> Substring? {
                line.range(of: key + "=").map { line[$0.upperBound...].prefix { !$0.isWhitespace } }
            }
            guard let epoch = value("epoch").flatMap({ UInt64($0) }) else { continue }
            let partition = value("shard").flatMap { $0.hasPrefix("p") ? Int($0.dropFirst()) : nil }
            terms.insert(NodeHAHistory.Term(partition.map { HAConfiguration.resource(partition: $0) } ?? "node/0", epoch))
        }
        return terms
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
            for id in ids { seen[id] = await readiness(id) ?? "down" }
            if condition(seen) { return seen }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the pair never got to: \(what); last seen \(seen)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// The node that answers ready, once one does.
    func awaitActive(sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let seen = try await awaitState("one node ready", sourceLocation: sourceLocation) { $0.values.contains("ready") }
        return ids.first { seen[$0] == "ready" }!
    }
}
