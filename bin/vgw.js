#!/usr/bin/env node
// The `vgw` command. Sources are TypeScript run through tsx, so there is no build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../cli/index.ts')
await main(process.argv)
