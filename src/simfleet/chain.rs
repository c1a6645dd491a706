//! An in-process Ethereum JSON-RPC 2.0 endpoint answering what the chain
//! source asks, as a node does: `eth_chainId`, `eth_blockNumber` (a block
//! every 2 s), `eth_getBalance` and `eth_call` to a registry whose view
//! function takes a `bytes32` account and returns the wallet registered for
//! it (the zero address when none is). Batches are answered too; any other
//! method is error -32601, as a node answers it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What the chain holds; change it with [`ChainServer::with`].
#[derive(Debug, Default)]
pub struct Chain {
    pub chain_id: u64,
    /// The block number at start; one more every 2 s.
    pub first_block: u64,
    /// Lower-case `0x…` address → balance in wei.
    pub balances: HashMap<String, u128>,
    /// The registry contract's lower-case `0x…` address.
    pub registry: String,
    /// Lower-case `0x…` bytes32 account → lower-case `0x…` wallet.
    pub registrations: HashMap<String, String>,
}

struct Node {
    chain: Mutex<Chain>,
    started: Instant,
}

/// The running endpoint. Dropping it stops it.
pub struct ChainServer {
    pub addr: SocketAddr,
    node: Arc<Node>,
    _serving: super::Serving,
}

impl ChainServer {
    /// Serves `chain` on a free loopback port.
    pub async fn start(chain: Chain) -> std::io::Result<ChainServer> {
        let node = Arc::new(Node {
            chain: Mutex::new(chain),
            started: Instant::now(),
        });
        let app = Router::new().route("/", post(rpc)).with_state(node.clone());
        let serving = super::serve(app).await?;
        Ok(ChainServer {
            addr: serving.addr,
            node,
            _serving: serving,
        })
    }

    /// The URL to configure as `sources.chain.rpc_url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Changes the chain.
    pub fn with<T>(&self, f: impl FnOnce(&mut Chain) -> T) -> T {
        f(&mut super::lock(&self.node.chain))
    }
}

async fn rpc(State(node): State<Arc<Node>>, Json(request): Json<Value>) -> Json<Value> {
    Json(match request {
        Value::Array(calls) => Value::Array(calls.iter().map(|c| answer(&node, c)).collect()),
        call => answer(&node, &call),
    })
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn answer(node: &Node, call: &Value) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let params = call.get("params").and_then(Value::as_array);
    let param = |i: usize| params.and_then(|p| p.get(i));
    let chain = super::lock(&node.chain);
    let result = match call.get("method").and_then(Value::as_str) {
        Some("eth_chainId") => json!(format!("0x{:x}", chain.chain_id)),
        Some("eth_blockNumber") => {
            let block = chain.first_block + node.started.elapsed().as_secs() / 2;
            json!(format!("0x{block:x}"))
        }
        Some("eth_getBalance") => {
            let Some(address) = param(0).and_then(Value::as_str) else {
                return error(&id, -32602, "invalid params: want [address, block]");
            };
            let wei = chain
                .balances
                .get(&address.to_ascii_lowercase())
                .copied()
                .unwrap_or(0);
            json!(format!("0x{wei:x}"))
        }
        Some("eth_call") => {
            let Some(tx) = param(0) else {
                return error(&id, -32602, "invalid params: want [transaction, block]");
            };
            let to = tx.get("to").and_then(Value::as_str).unwrap_or_default();
            let input = tx
                .get("input")
                .or_else(|| tx.get("data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !to.eq_ignore_ascii_case(&chain.registry) {
                // A call to an address without code returns nothing.
                json!("0x")
            } else {
                // 0x, a 4-byte selector (8 hex digits), then the bytes32 account.
                match input.get(10..74) {
                    Some(account) => {
                        let key = format!("0x{}", account.to_ascii_lowercase());
                        let wallet = chain
                            .registrations
                            .get(&key)
                            .map(|w| w.trim_start_matches("0x").to_ascii_lowercase())
                            .unwrap_or_else(|| "0".repeat(40));
                        json!(format!("0x{wallet:0>64}"))
                    }
                    None => return error(&id, 3, "execution reverted"),
                }
            }
        }
        Some(other) => {
            return error(
                &id,
                -32601,
                &format!("the method {other} does not exist/is not available"),
            )
        }
        None => return error(&id, -32600, "invalid request: no method"),
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        let mut chain = Chain {
            chain_id: 31337,
            first_block: 100,
            registry: "0x00000000000000000000000000000000000000aa".into(),
            ..Chain::default()
        };
        chain.balances.insert(
            "0x00000000000000000000000000000000000000b1".into(),
            1_500_000_000_000_000_000,
        );
        chain.registrations.insert(
            format!("0x{}", "11".repeat(32)),
            "0x00000000000000000000000000000000000000C1".into(),
        );
        Node {
            chain: Mutex::new(chain),
            started: Instant::now(),
        }
    }

    fn call(node: &Node, method: &str, params: Value) -> Value {
        answer(
            node,
            &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        )
    }

    #[test]
    fn answers_as_a_node_does() {
        let n = node();
        assert_eq!(call(&n, "eth_chainId", json!([]))["result"], "0x7a69");
        assert_eq!(call(&n, "eth_blockNumber", json!([]))["result"], "0x64");
        assert_eq!(
            call(
                &n,
                "eth_getBalance",
                json!(["0x00000000000000000000000000000000000000B1", "latest"])
            )["result"],
            "0x14d1120d7b160000"
        );
        let data = |account: &str| format!("0x12345678{account}");
        let registered = call(
            &n,
            "eth_call",
            json!([{"to": "0x00000000000000000000000000000000000000AA", "input": data(&"11".repeat(32))}, "latest"]),
        );
        assert_eq!(
            registered["result"],
            format!("0x{}c1", "0".repeat(62)),
            "{registered}"
        );
        let missing = call(
            &n,
            "eth_call",
            json!([{"to": "0x00000000000000000000000000000000000000aa", "data": data(&"22".repeat(32))}, "latest"]),
        );
        assert_eq!(missing["result"], format!("0x{}", "0".repeat(64)));
        let unknown = call(&n, "eth_sendTransaction", json!([]));
        assert_eq!(unknown["error"]["code"], -32601);
        assert_eq!(unknown["id"], 7);
    }
}
