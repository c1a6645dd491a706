// SPDX-License-Identifier: Apache-2.0
// A minimal operator registry for fleetpulse's chain tests: the exporter
// reads `operatorMasterWallet(bytes32) returns (address)`; a non-zero answer
// means the account is registered.
//
// Compiled beside this file (solc 0.8.37) by tests/peers/compile-registry:
//   node_modules/.bin/solcjs --bin --abi --optimize -o . Registry.sol
pragma solidity ^0.8.20;

contract Registry {
    /// The master wallet registered for each operator account.
    mapping(bytes32 => address) public operatorMasterWallet;

    event Registered(bytes32 indexed account, address wallet);

    /// Registers (or, with the zero address, unregisters) an account.
    function register(bytes32 account, address wallet) external {
        operatorMasterWallet[account] = wallet;
        emit Registered(account, wallet);
    }
}
