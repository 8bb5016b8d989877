import type { Client } from 'aedes'
import type { DeviceIdentity } from './device-identity.ts'

/** Vehicles connected to this process now, by VIN. */
export class ConnectionRegistry {
  readonly #byVin = new Map<string, { client: Client, identity: DeviceIdentity, since: Date }>()

  add (client: Client, identity: DeviceIdentity, since: Date): void {
    this.#byVin.set(identity.vin, { client, identity, since })
  }

  /** Removes the entry only if it still belongs to this client: a takeover has replaced it otherwise. */
  remove (client: Client, vin: string): boolean {
    if (this.#byVin.get(vin)?.client !== client) return false
    this.#byVin.delete(vin)
    return true
  }

  get (vin: string): { client: Client, identity: DeviceIdentity, since: Date } | undefined {
    return this.#byVin.get(vin)
  }

  isConnected (vin: string): boolean {
    return this.#byVin.has(vin)
  }

  clients (): Client[] {
    return [...this.#byVin.values()].map((e) => e.client)
  }
}
