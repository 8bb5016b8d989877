// The certs part: the development PKI (CA, server, vehicles, CRL). Production uses its own PKI.
export { devPkiPaths, initDevPki, issueVehicleCertificate, revokeVehicle, loadDevAuthority, type DevPkiPaths, type IssuedVehicle, type IssueVehicleOptions } from './dev-pki.ts'
export { createAuthority, issueLeaf, loadAuthority, createCrl, createIntermediate, crlSerials, indexCrls, normalSerial, pemBlocks, type Authority, type CrlEntryIndex, type KeyAndCert } from './x509.ts'
