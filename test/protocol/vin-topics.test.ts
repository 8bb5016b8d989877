import t from 'tap'
import { hasValidCheckDigit, isValidVin, parseVehicleTopic, upTopic, downTopic, vinCheckDigit } from '../../protocol/index.ts'

t.test('VINs follow ISO 3779', async (t) => {
  t.ok(isValidVin('WVWZZZ1JZXW000001'))
  t.notOk(isValidVin('WVWZZZ1JZXW00000'), '16 characters')
  t.notOk(isValidVin('WVWZZZ1JZXW0000011'), '18 characters')
  for (const letter of ['I', 'O', 'Q']) t.notOk(isValidVin(`WVWZZZ1JZXW00000${letter}`), `no ${letter}`)
  t.notOk(isValidVin('wvwzzz1jzxw000001'), 'capitals only')
})

t.test('check digit (position 9)', async (t) => {
  t.equal(vinCheckDigit('1M8GDM9AXKP042788'), 'X')
  t.ok(hasValidCheckDigit('1M8GDM9AXKP042788'))
  t.ok(hasValidCheckDigit('11111111111111111'))
  t.notOk(hasValidCheckDigit('1M8GDM9A1KP042788'))
})

t.test('topics', async (t) => {
  t.equal(upTopic('WVWZZZ1JZXW000001'), 'vehicles/WVWZZZ1JZXW000001/up')
  t.equal(downTopic('WVWZZZ1JZXW000001'), 'vehicles/WVWZZZ1JZXW000001/down')
  t.same(parseVehicleTopic('vehicles/X/up'), { vin: 'X', direction: 'up' })
  t.equal(parseVehicleTopic('vehicles/X/up/more'), null)
  t.equal(parseVehicleTopic('vehicles//up'), null)
})
