#!/usr/bin/env node
console.log("setup-native: placeholder until written");
