// The CLI part: the `vgw` command.
export { buildProgram, main } from './vgw.ts'
