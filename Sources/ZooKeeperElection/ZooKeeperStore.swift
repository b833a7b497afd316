import HawserCore
import Coordination
import Foundation
import ZooKeeper

/// The election's requests on one ZooKeeper session: runs the `ZooKeeperProgram` of each
/// `ElectionCore` action, performing its requests with the client. Holds no decision of its own.
struct ZooKeeperStore: Sendable {
    let client: ZooKeeperClient
    let configuration: ZooKeeperElectionConfiguration
    let candidate: Candidate

    /// This session's candidate node, and the watch on its predecessor while the program's place
    /// names it.
    struct Place: Sendable {
        var program = ZooKeeperProgram.Place()
        var watching: (node: String, watch: ZooKeeperWatch)?
    }

    func round(_ request: RoundRequest, _ place: inout Place) async throws -> ElectionView {
        guard let view = try await run(.round(request), &place) else { preconditionFailure("Invalid state: a round without a view") }
        return view
    }

    func release(handOverTo: String?, _ place: inout Place) async throws {
        _ = try await run(.release(handOverTo: handOverTo), &place)
    }

    func withdraw(_ place: inout Place) async throws {
        _ = try await run(.withdraw, &place)
    }

    func setString(_ setting: ZooKeeperSetting, _ value: String?, _ place: inout Place) async throws {
        _ = try await run(.write(setting, value), &place)
    }

    /// Waits for the predecessor's watch, a lost connection, `wakeup` (work queued), or
    /// `checkInterval`, whichever is first.
    func wait(_ place: Place, wakeup: Wakeup) async -> ZooKeeperConnectionState? {
        await withTaskGroup(of: ZooKeeperConnectionState?.self) { group in
            group.addTask {
                await wakeup.wait()
                return nil
            }
            group.addTask {
                for await state in client.states() where state != .connected && state != .reconnected { return state }
                return nil
            }
            group.addTask { [interval = configuration.checkInterval] in
                try? await Task.sleep(for: interval)
                return nil
            }
            if let watch = place.watching?.watch {
                group.addTask {
                    _ = try? await watch.event()
                    return nil
                }
            }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
    }

    // MARK: Requests

    /// Runs `action`'s program to its end, performing each request it names.
    private func run(_ action: ZooKeeperProgram.Action, _ place: inout Place) async throws -> ElectionView? {
        var program = ZooKeeperProgram(candidate: candidate, session: client.sessionID, action: action, place: place.program)
        while true {
            switch program.next() {
            case .send(let request):
                program.receive(await perform(request, &place.watching))
            case .finished(let view, let next):
                settle(next, &place)
                return view
            case .failed(let error, let next):
                settle(next, &place)
                throw error
            }
        }
    }

    /// Keeps the watch only while the program still watches its node.
    private func settle(_ program: ZooKeeperProgram.Place, _ place: inout Place) {
        place.program = program
        if place.watching?.node != program.watching { place.watching = nil }
    }

    /// One request with the client, bounded by `requestTimeout`; a thrown error is the reply.
    /// A watch set on a node that exists replaces the one `watching` held.
    private func perform(_ request: ZooKeeperRequest, _ watching: inout (node: String, watch: ZooKeeperWatch)?) async -> ZooKeeperReply {
        let candidates = configuration.candidatesPath
        do {
            switch request {
            case .listCandidates:
                return .children(try await call { try await client.getChildren(candidates).children })
            case .exists(let node):
                return .exists(ephemeralOwner: try await call { try await client.exists("\(candidates)/\(node)") }?.ephemeralOwner)
            case .delete(let node):
                try await call { try await client.delete("\(candidates)/\(node)") }
                return .done
            case .create(let prefix):
                // Readable and writable only with the election's credentials.
                let data = Array((try? JSONEncoder().encode(candidate)) ?? Data())
                let path = try await call {
                    try await client.create("\(candidates)/\(prefix)", data: data, acl: configuration.credentials.acl, mode: .ephemeralSequential)
                }
                return .created(node: String(path.split(separator: "/").last!))
            case .readEpoch:
                return try await read(configuration.epochPath)
            case .read(let setting):
                return try await read(path(of: setting))
            case .claim(let node, let record, let version):
                let results = try await call {
                    try await client.multi([
                        .check(path: "\(candidates)/\(node)", version: -1),
                        .setData(path: configuration.epochPath, data: record.bytes, version: version),
                    ])
                }
                guard results.count == 2, case .setData(let stat) = results[1] else { return .claimed(mzxid: nil) }
                return .claimed(mzxid: stat.mzxid)
            case .watch(let node):
                let (stat, watch) = try await call { try await client.existsAndWatch("\(candidates)/\(node)") }
                if stat != nil { watching = (node, watch) }
                return .exists(ephemeralOwner: stat?.ephemeralOwner)
            case .write(let setting, let value):
                let path = path(of: setting)
                try await call { _ = try await client.setData(path, data: Array((value ?? "").utf8)) }
                return .done
            }
        } catch {
            return .failed(error)
        }
    }

    private func read(_ path: String) async throws -> ZooKeeperReply {
        let (data, stat) = try await call { try await client.getData(path) }
        return .data(data, mzxid: stat.mzxid, version: stat.version)
    }

    private func path(of setting: ZooKeeperSetting) -> String {
        switch setting {
        case .switchover: configuration.switchoverPath
        case .preferred: configuration.preferredPath
        }
    }

    /// One ZooKeeper request, bounded by `requestTimeout`.
    private func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(configuration.requestTimeout, "a ZooKeeper request", body)
    }
}
