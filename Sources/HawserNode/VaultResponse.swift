import Flows
import HawserCore
import Hummingbird
import NIOCore
import Vault

/// The JSON of the vault routes (`VaultQueryResultJSON`'s and `VaultBalancesJSON`'s shapes),
/// written with `JSONValue` so that amounts and the numbers in states' data stay exact.
enum VaultResponse {
    static func page(_ page: VaultPage) -> Response {
        var body: [String: JSONValue] = ["states": .array(page.states.map(state))]
        if let next = page.next { body["next"] = .string(next.rawValue) }
        return Response(json: .object(body))
    }

    static func balances(_ balances: [VaultBalance]) -> Response {
        Response(json: .object(["balances": .array(balances.map { balance in
            .object(["type": .string(balance.type), "owner": .string(balance.owner),
                     "amount": .number(JSONNumber(balance.amount)), "states": .number(JSONNumber(balance.states))])
        })]))
    }

    static func state(_ state: VaultState) -> JSONValue {
        var out: [String: JSONValue] = [
            "ref": .string(state.ref.description), "type": .string(state.type), "owner": .string(state.owner),
            "data": (try? JSONValue(parsing: state.data)) ?? .null,
        ]
        if let amount = state.amount { out["amount"] = .number(JSONNumber(amount)) }
        if let consumer = state.consumedBy { out["consumedBy"] = .string(consumer.hex) }
        if let holder = state.lockedBy { out["lockedBy"] = .string(holder) }
        return .object(out)
    }

}

extension Response {
    /// A 200 answer whose body is `value`, every number as it is written.
    init(json value: JSONValue) {
        self.init(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.bytes)))
    }
}
