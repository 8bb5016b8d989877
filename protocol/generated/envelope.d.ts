import * as $protobuf from "protobufjs/minimal.js";
import Long = require("long");

/** Namespace vgw. */
export namespace vgw {

    /** Namespace v1. */
    namespace v1 {

        /**
         * Properties of an Envelope.
         * @deprecated Use vgw.v1.Envelope.$Properties instead.
         */
        interface IEnvelope extends vgw.v1.Envelope.$Properties {
        }

        /** Represents an Envelope. */
        class Envelope {

            /**
             * Constructs a new Envelope.
             * @param [properties] Properties to set
             */
            constructor(properties?: vgw.v1.Envelope.$Properties);

            /** Unknown fields preserved while decoding when enabled */
            $unknowns?: Uint8Array[];

            /** Envelope messageId. */
            messageId: string;

            /** Envelope correlationId. */
            correlationId: string;

            /** Envelope kind. */
            kind: vgw.v1.Envelope.Kind;

            /** Envelope type. */
            type: string;

            /** Envelope createdAtMs. */
            createdAtMs: number;

            /** Envelope ttlSeconds. */
            ttlSeconds: number;

            /** Envelope payload. */
            payload: Uint8Array;

            /** Envelope attributes. */
            attributes: { [k: string]: string };

            /** Envelope ackStatus. */
            ackStatus: vgw.v1.Envelope.AckStatus;

            /** Envelope ackReason. */
            ackReason: string;

            /**
             * Encodes the specified Envelope message. Does not implicitly {@link vgw.v1.Envelope.verify|verify} messages.
             * @param message Envelope message or plain object to encode
             * @param [writer] Writer to encode to
             * @returns Writer
             */
            static encode(message: vgw.v1.Envelope.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;

            /**
             * Decodes an Envelope message from the specified reader or buffer.
             * @param reader Reader or buffer to decode from
             * @param [length] Message length if known beforehand
             * @returns {vgw.v1.Envelope & vgw.v1.Envelope.$Shape} Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): vgw.v1.Envelope & vgw.v1.Envelope.$Shape;

            /**
             * Gets the type url for Envelope
             * @param [prefix] Custom type url prefix, defaults to `"type.googleapis.com"`
             * @returns The type url
             */
            static getTypeUrl(prefix?: string): string;
        }

        namespace Envelope {

            /** Properties of an Envelope. */
            interface $Properties {

                /** Envelope messageId */
                messageId?: (string|null);

                /** Envelope correlationId */
                correlationId?: (string|null);

                /** Envelope kind */
                kind?: (vgw.v1.Envelope.Kind|null);

                /** Envelope type */
                type?: (string|null);

                /** Envelope createdAtMs */
                createdAtMs?: (number|null);

                /** Envelope ttlSeconds */
                ttlSeconds?: (number|null);

                /** Envelope payload */
                payload?: (Uint8Array|null);

                /** Envelope attributes */
                attributes?: ({ [k: string]: string }|null);

                /** Envelope ackStatus */
                ackStatus?: (vgw.v1.Envelope.AckStatus|null);

                /** Envelope ackReason */
                ackReason?: (string|null);

                /** Unknown fields preserved while decoding when enabled */
                $unknowns?: Uint8Array[];
            }

            /** Shape of an Envelope. */
            type $Shape = vgw.v1.Envelope.$Properties;

            /** Kind enum. */
            enum Kind {

                /** KIND_UNSPECIFIED value */
                KIND_UNSPECIFIED = 0,

                /** TELEMETRY value */
                TELEMETRY = 1,

                /** EVENT value */
                EVENT = 2,

                /** REQUEST value */
                REQUEST = 3,

                /** RESPONSE value */
                RESPONSE = 4,

                /** MESSAGE value */
                MESSAGE = 5,

                /** ACK value */
                ACK = 6
            }

            /** AckStatus enum. */
            enum AckStatus {

                /** ACK_STATUS_UNSPECIFIED value */
                ACK_STATUS_UNSPECIFIED = 0,

                /** RECEIVED value */
                RECEIVED = 1,

                /** DISPLAYED value */
                DISPLAYED = 2,

                /** READ value */
                READ = 3,

                /** ACCEPTED value */
                ACCEPTED = 4,

                /** REJECTED value */
                REJECTED = 5
            }
        }
    }
}
