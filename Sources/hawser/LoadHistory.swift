import HawserClient
import HawserCore
import HawserWire
import Sim

/// What `hawser bench notary --history FILE` writes of each request (docs/history.md): an
/// `invoke` before it is sent, then what its caller was told. Over HTTP and gRPC alike the load
/// calls `NotaryClient`, so one mapping serves both; a batch call's items are recorded one by one.
enum LoadHistory {
    /// The event for what the call for `txId` came to: `ok` for a verified answer (the client
    /// returns no other), `fail` when the request was certainly not carried out, `info` otherwise.
    static func event(_ txId: SecureHash, _ result: Result<NotarisationAnswer, any Error>) -> HistoryEvent {
        switch result {
        case .success(let answer): .notariseOk(txId: txId, outcome: answer.outcome)
        case .failure(let error) where notCarriedOut(error): .notariseFail(txId: txId, error: errorText(error))
        case .failure(let error): .notariseInfo(txId: txId, error: errorText(error))
        }
    }

    /// Whether `error` proves the request changed nothing: the notary refused it (a 4xx code) or
    /// it was never sent. A time-out, a lost connection, a 5xx or an answer that failed
    /// verification leave its fate unknown.
    static func notCarriedOut(_ error: any Error) -> Bool {
        switch error {
        case let error as APIError: (400..<500).contains(error.code.httpStatus)
        case NotaryClientError.invalidConfiguration: true
        default: false
        }
    }
}
