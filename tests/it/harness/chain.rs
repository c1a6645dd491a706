//! The chain the chain tests read: the registry from tests/peers/Registry.sol
//! deployed on anvil, two accounts registered, one deployer funded.

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

alloy::sol! {
    function register(bytes32 account, address wallet);
}

/// The compiled registry, committed beside its source.
pub const REGISTRY_BIN: &str = include_str!("../../peers/Registry_sol_Registry.bin");

pub const PROD_ACCOUNT: &str = "0x593ad699fc1f7cd5bb2e35cbf0f19c557067cbbe80c46d1fb6dfbdb0ae075528";
pub const TEST1_ACCOUNT: &str =
    "0x1111111111111111111111111111111111111111111111111111111111111111";
pub const TEST2_ACCOUNT: &str =
    "0x2222222222222222222222222222222222222222222222222222222222222222";
/// Deployers with no history: their balances are exactly what the test sends.
pub const TEST1_DEPLOYER: &str = "0x00000000000000000000000000000000000f1ee1";
pub const TEST2_DEPLOYER: &str = "0x00000000000000000000000000000000000f1ee2";

/// The chain as the tests see it.
pub struct Chain {
    pub registry: Address,
    pub prod_deployer: Address,
}

async fn send(p: &RootProvider, tx: TransactionRequest) -> alloy::rpc::types::TransactionReceipt {
    p.send_transaction(tx)
        .await
        .expect("eth_sendTransaction")
        .get_receipt()
        .await
        .expect("receipt")
}

/// Deploys the registry from anvil's first (unlocked) account, registers
/// prod and test-2, and funds test-1's deployer with 1.5 ETH.
pub async fn set_up(url: &str) -> Chain {
    let p: RootProvider = RootProvider::new_http(url.parse().unwrap());
    let accounts = p.get_accounts().await.expect("eth_accounts");
    let owner = accounts[0];
    let code = alloy::primitives::hex::decode(REGISTRY_BIN.trim()).expect("hex bytecode");
    let deploy = TransactionRequest::default().from(owner).input(code.into());
    let registry = send(&p, deploy)
        .await
        .contract_address
        .expect("contract address");
    for (account, wallet) in [(PROD_ACCOUNT, accounts[1]), (TEST2_ACCOUNT, accounts[2])] {
        let call = registerCall {
            account: account.parse::<FixedBytes<32>>().unwrap(),
            wallet,
        };
        let tx = TransactionRequest::default()
            .from(owner)
            .to(registry)
            .input(call.abi_encode().into());
        assert!(send(&p, tx).await.status(), "register reverted");
    }
    let fund = TransactionRequest::default()
        .from(accounts[3])
        .to(TEST1_DEPLOYER.parse().unwrap())
        .value(U256::from(1_500_000_000_000_000_000u128));
    send(&p, fund).await;
    Chain {
        registry,
        prod_deployer: accounts[1],
    }
}
