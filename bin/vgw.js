#!/usr/bin/env node
// The `vgw` command. Sources are TypeScript with erasable syntax only (tsconfig
// erasableSyntaxOnly), so there is no build step: Node 24 runs them itself (type
// stripping); older Node goes through tsx.
if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api')
  register()
}
const { main } = await import('../cli/index.ts')
await main(process.argv)
