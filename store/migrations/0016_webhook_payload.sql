-- A webhook may ask for each event's payload (README, "Webhooks"): an opt-in, and only for envelopes
-- up to VGW_EVENT_PAYLOAD_MAX_BYTES, so a batch stays bounded whatever a vehicle sends.
ALTER TABLE "webhooks" ADD COLUMN "include_payload" boolean DEFAULT false NOT NULL;
