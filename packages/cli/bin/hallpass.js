#!/usr/bin/env node
// The `hallpass` bin. Hallpass runs from its TypeScript sources: tsx's loader is registered first,
// then the CLI is imported through it. Works from a checkout (`npx hallpass`) and after npm install.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
