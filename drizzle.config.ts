import { defineConfig } from 'drizzle-kit'

// Only the plain tables: the partitioned transaction log lives in a custom
// migration because drizzle-kit cannot express PARTITION BY (drizzle-orm#2854).
export default defineConfig({
  dialect: 'postgresql',
  schema: './store/schema/tables.ts',
  out: './store/migrations',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://localhost/vgw' }
})
