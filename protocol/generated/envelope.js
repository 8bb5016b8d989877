/*eslint-disable block-scoped-var, id-length, no-control-regex, no-magic-numbers, no-mixed-operators, no-prototype-builtins, no-redeclare, no-shadow, no-var, sort-vars, default-case, jsdoc/require-param*/
import $protobuf from "protobufjs/minimal.js";

// Common aliases
const $Reader = $protobuf.Reader, $Writer = $protobuf.Writer, $util = $protobuf.util;
const $Object = $util.global.Object, $undefined = $util.global.undefined, $Error = $util.global.Error, $RangeError = $util.global.RangeError;

// Exported root namespace
const $root = $protobuf.roots["default"] || ($protobuf.roots["default"] = {});

export const vgw = $root.vgw = (() => {

    /**
     * Namespace vgw.
     * @exports vgw
     * @namespace
     */
    const vgw = {};

    vgw.v1 = (function() {

        /**
         * Namespace v1.
         * @memberof vgw
         * @namespace
         */
        const v1 = {};

        v1.Envelope = (function() {

            /**
             * Properties of an Envelope.
             * @typedef {Object} vgw.v1.Envelope.$Properties
             * @property {string|null} [messageId] Envelope messageId
             * @property {string|null} [correlationId] Envelope correlationId
             * @property {vgw.v1.Envelope.Kind|null} [kind] Envelope kind
             * @property {string|null} [type] Envelope type
             * @property {number|null} [createdAtMs] Envelope createdAtMs
             * @property {number|null} [ttlSeconds] Envelope ttlSeconds
             * @property {Uint8Array|null} [payload] Envelope payload
             * @property {Object.<string,string>|null} [attributes] Envelope attributes
             * @property {vgw.v1.Envelope.AckStatus|null} [ackStatus] Envelope ackStatus
             * @property {string|null} [ackReason] Envelope ackReason
             * @property {Array.<Uint8Array>} [$unknowns] Unknown fields preserved while decoding when enabled
             */

            /**
             * Properties of an Envelope.
             * @memberof vgw.v1
             * @interface IEnvelope
             * @augments vgw.v1.Envelope.$Properties
             * @deprecated Use vgw.v1.Envelope.$Properties instead.
             */

            /**
             * Shape of an Envelope.
             * @typedef {vgw.v1.Envelope.$Properties} vgw.v1.Envelope.$Shape
             */

            /**
             * Constructs a new Envelope.
             * @memberof vgw.v1
             * @classdesc Represents an Envelope.
             * @constructor
             * @param {vgw.v1.Envelope.$Properties=} [properties] Properties to set
             * @property {Array.<Uint8Array>} [$unknowns] Unknown fields preserved while decoding when enabled
             */
            const Envelope = function (properties) {
                this.attributes = {};
                if (properties)
                    for (let keys = $Object.keys(properties), i = 0; i < keys.length; ++i)
                        if (properties[keys[i]] != null && keys[i] !== "__proto__")
                            this[keys[i]] = properties[keys[i]];
            };

            /**
             * Envelope messageId.
             * @member {string} messageId
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.messageId = "";

            /**
             * Envelope correlationId.
             * @member {string} correlationId
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.correlationId = "";

            /**
             * Envelope kind.
             * @member {vgw.v1.Envelope.Kind} kind
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.kind = 0;

            /**
             * Envelope type.
             * @member {string} type
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.type = "";

            /**
             * Envelope createdAtMs.
             * @member {number} createdAtMs
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.createdAtMs = $util.Long ? $util.Long.fromBits(0,0,true) : 0;

            /**
             * Envelope ttlSeconds.
             * @member {number} ttlSeconds
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.ttlSeconds = 0;

            /**
             * Envelope payload.
             * @member {Uint8Array} payload
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.payload = $util.newBuffer([]);

            /**
             * Envelope attributes.
             * @member {Object.<string,string>} attributes
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.attributes = $util.emptyObject;

            /**
             * Envelope ackStatus.
             * @member {vgw.v1.Envelope.AckStatus} ackStatus
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.ackStatus = 0;

            /**
             * Envelope ackReason.
             * @member {string} ackReason
             * @memberof vgw.v1.Envelope
             * @instance
             */
            Envelope.prototype.ackReason = "";

            /**
             * Encodes the specified Envelope message. Does not implicitly {@link vgw.v1.Envelope.verify|verify} messages.
             * @function encode
             * @memberof vgw.v1.Envelope
             * @static
             * @param {vgw.v1.Envelope.$Properties} message Envelope message or plain object to encode
             * @param {$protobuf.Writer} [writer] Writer to encode to
             * @returns {$protobuf.Writer} Writer
             */
            Envelope.encode = function (message, writer, _depth) {
                if (!writer)
                    writer = $Writer.create();
                if (_depth === $undefined)
                    _depth = 0;
                if (_depth > $util.recursionLimit)
                    throw $Error("max depth exceeded");
                if (message.messageId != null && $Object.hasOwnProperty.call(message, "messageId") && message.messageId !== "")
                    writer.uint32(/* id 1, wireType 2 =*/10).string(message.messageId);
                if (message.correlationId != null && $Object.hasOwnProperty.call(message, "correlationId") && message.correlationId !== "")
                    writer.uint32(/* id 2, wireType 2 =*/18).string(message.correlationId);
                if (message.kind != null && $Object.hasOwnProperty.call(message, "kind") && message.kind !== 0)
                    writer.uint32(/* id 3, wireType 0 =*/24).int32(message.kind);
                if (message.type != null && $Object.hasOwnProperty.call(message, "type") && message.type !== "")
                    writer.uint32(/* id 4, wireType 2 =*/34).string(message.type);
                if (message.createdAtMs != null && $Object.hasOwnProperty.call(message, "createdAtMs") && (typeof message.createdAtMs === "object" ? message.createdAtMs.low || message.createdAtMs.high : message.createdAtMs !== 0))
                    writer.uint32(/* id 5, wireType 0 =*/40).uint64(message.createdAtMs);
                if (message.ttlSeconds != null && $Object.hasOwnProperty.call(message, "ttlSeconds") && message.ttlSeconds !== 0)
                    writer.uint32(/* id 6, wireType 0 =*/48).uint32(message.ttlSeconds);
                if (message.payload != null && $Object.hasOwnProperty.call(message, "payload") && message.payload.length)
                    writer.uint32(/* id 7, wireType 2 =*/58).bytes(message.payload);
                if (message.attributes != null && $Object.hasOwnProperty.call(message, "attributes"))
                    for (let keys = $Object.keys(message.attributes), i = 0; i < keys.length; ++i)
                        writer.uint32(/* id 8, wireType 2 =*/66).fork().uint32(/* id 1, wireType 2 =*/10).string(keys[i]).uint32(/* id 2, wireType 2 =*/18).string(message.attributes[keys[i]]).ldelim();
                if (message.ackStatus != null && $Object.hasOwnProperty.call(message, "ackStatus") && message.ackStatus !== 0)
                    writer.uint32(/* id 9, wireType 0 =*/72).int32(message.ackStatus);
                if (message.ackReason != null && $Object.hasOwnProperty.call(message, "ackReason") && message.ackReason !== "")
                    writer.uint32(/* id 10, wireType 2 =*/82).string(message.ackReason);
                if (message.$unknowns != null && $Object.hasOwnProperty.call(message, "$unknowns"))
                    for (let i = 0; i < message.$unknowns.length; ++i)
                        writer.raw(message.$unknowns[i]);
                return writer;
            };

            /**
             * Decodes an Envelope message from the specified reader or buffer.
             * @function decode
             * @memberof vgw.v1.Envelope
             * @static
             * @param {$protobuf.Reader|Uint8Array} reader Reader or buffer to decode from
             * @param {number} [length] Message length if known beforehand
             * @returns {vgw.v1.Envelope & vgw.v1.Envelope.$Shape} Envelope
             * @throws {Error} If the payload is not a reader or valid buffer
             * @throws {$protobuf.util.ProtocolError} If required fields are missing
             */
            Envelope.decode = function (reader, length, _end, _depth, _target) {
                if (!(reader instanceof $Reader))
                    reader = $Reader.create(reader);
                if (_depth === $undefined)
                    _depth = 0;
                if (_depth > $Reader.recursionLimit)
                    throw $Error("max depth exceeded");
                let end, message, key, value;
                if (length === $undefined)
                    end = reader.len;
                else {
                    end = reader.pos + length;
                    if (end > reader.len)
                        throw $RangeError("index out of range");
                    length = reader.len;
                    reader.len = end;
                }
                message = _target || new $root.vgw.v1.Envelope();
                while (reader.pos < end) {
                    let start = reader.pos;
                    let tag = reader.tag();
                    if (tag === _end) {
                        _end = $undefined;
                        break;
                    }
                    let wireType = tag & 7;
                    switch (tag >>>= 3) {
                    case 1: {
                            if (wireType !== 2)
                                break;
                            if ((value = reader.stringVerify()).length)
                                message.messageId = value;
                            else
                                delete message.messageId;
                            continue;
                        }
                    case 2: {
                            if (wireType !== 2)
                                break;
                            if ((value = reader.stringVerify()).length)
                                message.correlationId = value;
                            else
                                delete message.correlationId;
                            continue;
                        }
                    case 3: {
                            if (wireType !== 0)
                                break;
                            if (value = reader.int32())
                                message.kind = value;
                            else
                                delete message.kind;
                            continue;
                        }
                    case 4: {
                            if (wireType !== 2)
                                break;
                            if ((value = reader.stringVerify()).length)
                                message.type = value;
                            else
                                delete message.type;
                            continue;
                        }
                    case 5: {
                            if (wireType !== 0)
                                break;
                            if (typeof (value = reader.uint64()) === "object" ? value.low || value.high : value !== 0)
                                message.createdAtMs = value;
                            else
                                delete message.createdAtMs;
                            continue;
                        }
                    case 6: {
                            if (wireType !== 0)
                                break;
                            if (value = reader.uint32())
                                message.ttlSeconds = value;
                            else
                                delete message.ttlSeconds;
                            continue;
                        }
                    case 7: {
                            if (wireType !== 2)
                                break;
                            if ((value = reader.bytes()).length)
                                message.payload = value;
                            else
                                delete message.payload;
                            continue;
                        }
                    case 8: {
                            if (wireType !== 2)
                                break;
                            if (message.attributes === $util.emptyObject)
                                message.attributes = {};
                            let end2 = reader.size() + reader.pos;
                            if (end2 > reader.len)
                                throw $RangeError("index out of range");
                            reader.len = end2;
                            key = "";
                            value = "";
                            while (reader.pos < end2) {
                                let tag2 = reader.tag();
                                wireType = tag2 & 7;
                                switch (tag2 >>>= 3) {
                                case 1:
                                    if (wireType !== 2)
                                        break;
                                    key = reader.stringVerify();
                                    continue;
                                case 2:
                                    if (wireType !== 2)
                                        break;
                                    value = reader.stringVerify();
                                    continue;
                                }
                                reader.skipType(wireType, _depth, tag2);
                            }
                            if (reader.pos !== end2)
                                throw $RangeError("index out of range");
                            reader.len = end;
                            if (key === "__proto__")
                                $util.makeProp(message.attributes, key);
                            message.attributes[key] = value;
                            continue;
                        }
                    case 9: {
                            if (wireType !== 0)
                                break;
                            if (value = reader.int32())
                                message.ackStatus = value;
                            else
                                delete message.ackStatus;
                            continue;
                        }
                    case 10: {
                            if (wireType !== 2)
                                break;
                            if ((value = reader.stringVerify()).length)
                                message.ackReason = value;
                            else
                                delete message.ackReason;
                            continue;
                        }
                    }
                    reader.skipType(wireType, _depth, tag);
                    if (!reader.discardUnknown) {
                        $util.makeProp(message, "$unknowns", false);
                        (message.$unknowns || (message.$unknowns = [])).push(reader.raw(start, reader.pos));
                    }
                }
                if (length !== $undefined) {
                    if (reader.pos !== end)
                        throw $RangeError("index out of range");
                    reader.len = length;
                }
                if (_end !== $undefined)
                    throw $Error("missing end group");
                return message;
            };

            /**
             * Gets the type url for Envelope
             * @function getTypeUrl
             * @memberof vgw.v1.Envelope
             * @static
             * @param {string} [prefix] Custom type url prefix, defaults to `"type.googleapis.com"`
             * @returns {string} The type url
             */
            Envelope.getTypeUrl = function(prefix) {
                if (prefix === $undefined)
                    prefix = "type.googleapis.com";
                return prefix + "/vgw.v1.Envelope";
            };

            /**
             * Kind enum.
             * @name vgw.v1.Envelope.Kind
             * @enum {number}
             * @property {number} KIND_UNSPECIFIED=0 KIND_UNSPECIFIED value
             * @property {number} TELEMETRY=1 TELEMETRY value
             * @property {number} EVENT=2 EVENT value
             * @property {number} REQUEST=3 REQUEST value
             * @property {number} RESPONSE=4 RESPONSE value
             * @property {number} MESSAGE=5 MESSAGE value
             * @property {number} ACK=6 ACK value
             */
            Envelope.Kind = (function() {
                const valuesById = $Object.create(null), values = $Object.create(valuesById);
                values[valuesById[0] = "KIND_UNSPECIFIED"] = 0;
                values[valuesById[1] = "TELEMETRY"] = 1;
                values[valuesById[2] = "EVENT"] = 2;
                values[valuesById[3] = "REQUEST"] = 3;
                values[valuesById[4] = "RESPONSE"] = 4;
                values[valuesById[5] = "MESSAGE"] = 5;
                values[valuesById[6] = "ACK"] = 6;
                return values;
            })();

            /**
             * AckStatus enum.
             * @name vgw.v1.Envelope.AckStatus
             * @enum {number}
             * @property {number} ACK_STATUS_UNSPECIFIED=0 ACK_STATUS_UNSPECIFIED value
             * @property {number} RECEIVED=1 RECEIVED value
             * @property {number} DISPLAYED=2 DISPLAYED value
             * @property {number} READ=3 READ value
             * @property {number} ACCEPTED=4 ACCEPTED value
             * @property {number} REJECTED=5 REJECTED value
             */
            Envelope.AckStatus = (function() {
                const valuesById = $Object.create(null), values = $Object.create(valuesById);
                values[valuesById[0] = "ACK_STATUS_UNSPECIFIED"] = 0;
                values[valuesById[1] = "RECEIVED"] = 1;
                values[valuesById[2] = "DISPLAYED"] = 2;
                values[valuesById[3] = "READ"] = 3;
                values[valuesById[4] = "ACCEPTED"] = 4;
                values[valuesById[5] = "REJECTED"] = 5;
                return values;
            })();

            return Envelope;
        })();

        return v1;
    })();

    return vgw;
})();

export {
  $root as default
};
