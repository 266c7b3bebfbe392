// kinesalite, a local Kinesis (npm, in memory), on 127.0.0.1, as the test
// suites and the README's local set-up run it. Prints the port once it
// listens (and once the stream given by --stream is ACTIVE).
//
//   node tests/common/kinesalite.js [--port N] [--stream NAME [--shards N]]
//                                   [--fail OPERATION:ERROR_CODE:EVERY[:TIMES]]...
//
// kinesalite comes from --modules DIR, else $CINEMO_NODE_MODULES, else
// ~/.cache/cinemo/node/node_modules (where .ci/test installs it).
//
// One difference from Kinesis is mended here, before kinesalite loads:
// GetShardIterator with AT_TIMESTAMP never answers for a shard that holds no
// record at or after the timestamp (kinesalite 3.3.3 waits for the first
// such record to exist), while Kinesis answers with an iterator for the next
// record to arrive (API reference, GetShardIterator, Timestamp). Such a
// request is answered here as LATEST, which is that same position.
//
// --fail makes every EVERY-th call of OPERATION (GetRecords,
// GetShardIterator, ...) fail with ERROR_CODE, as Kinesis does under
// throttling (ProvisionedThroughputExceededException) or for an iterator
// older than five minutes (ExpiredIteratorException); with TIMES, only that
// many times. Each failure made is printed on stdout as
// `fault OPERATION ERROR_CODE`.

'use strict'

const http = require('http')
const os = require('os')
const path = require('path')

function parseArgs(argv) {
  const opts = {port: 0, stream: null, shards: 1, faults: [], modules: null}
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1]
    switch (argv[i]) {
      case '--port': opts.port = Number(value); i++; break
      case '--stream': opts.stream = value; i++; break
      case '--shards': opts.shards = Number(value); i++; break
      case '--modules': opts.modules = value; i++; break
      case '--fail': {
        const [operation, code, every, times] = String(value).split(':')
        if (!operation || !code || !(Number(every) >= 1) || (times !== undefined && !(Number(times) >= 1))) {
          usage('--fail takes OPERATION:ERROR_CODE:EVERY[:TIMES]')
        }
        opts.faults.push({operation, code, every: Number(every), left: times === undefined ? Infinity : Number(times), calls: 0})
        i++
        break
      }
      default: usage('unknown argument ' + argv[i])
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port takes a port number')
  if (!Number.isInteger(opts.shards) || opts.shards < 1) usage('--shards takes a number of shards')
  return opts
}

function usage(why) {
  console.error('kinesalite.js: ' + why)
  process.exit(2)
}

const opts = parseArgs(process.argv.slice(2))
const modules = opts.modules || process.env.CINEMO_NODE_MODULES ||
  path.join(os.homedir(), '.cache/cinemo/node/node_modules')
const root = path.join(modules, 'kinesalite')
const db = require(path.join(root, 'db'))

// kinesalite loads each action with require('./actions/<name>') when it is
// first required; replacing the cached module's exports first puts these
// wrappers in its place.
function wrapAction(name, wrap) {
  const file = require.resolve(path.join(root, 'actions', name + '.js'))
  const original = require(file)
  require.cache[file].exports = wrap(original)
}

wrapAction('getShardIterator', original => function getShardIterator(store, data, cb) {
  if (data.ShardIteratorType !== 'AT_TIMESTAMP' || data.Timestamp == null ||
      data.Timestamp * 1000 > Date.now()) {
    return original(store, data, cb)
  }
  hasRecordAtOrAfter(store, data, found => {
    if (found) return original(store, data, cb)
    original(store, Object.assign({}, data, {ShardIteratorType: 'LATEST', Timestamp: undefined}), cb)
  })
})

// Whether the shard holds a record that arrived at or after data.Timestamp
// (seconds); any doubt (unknown stream or shard) goes to kinesalite's own
// answer, which reports it.
function hasRecordAtOrAfter(store, data, done) {
  let shardIx
  try {
    shardIx = db.resolveShardId(data.ShardId).shardIx
  } catch (e) {
    return done(true)
  }
  store.getStream(data.StreamName, err => {
    if (err) return done(true)
    let answered = false
    const answer = found => { if (!answered) { answered = true; done(found) } }
    const records = store.getStreamDb(data.StreamName).createReadStream({
      gt: db.shardIxToHex(shardIx),
      lt: db.shardIxToHex(shardIx + 1),
    })
    records.on('data', item => {
      if (item.value.ApproximateArrivalTimestamp >= data.Timestamp) {
        answer(true)
        records.destroy()
      }
    })
    records.on('error', () => answer(true))
    records.on('end', () => answer(false))
    records.on('close', () => answer(false))
  })
}

const faultsByAction = {}
for (const fault of opts.faults) {
  const action = fault.operation[0].toLowerCase() + fault.operation.slice(1)
  ;(faultsByAction[action] = faultsByAction[action] || []).push(fault)
}
for (const action of Object.keys(faultsByAction)) {
  wrapAction(action, original => function withFaults(store, data, cb) {
    for (const fault of faultsByAction[action]) {
      if (fault.left === 0) continue
      fault.calls++
      if (fault.calls % fault.every === 0) {
        fault.left--
        console.log('fault ' + fault.operation + ' ' + fault.code)
        return cb(db.clientError(fault.code, 'injected by tests/common/kinesalite.js'))
      }
    }
    original(store, data, cb)
  })
}

const server = require(root)({createStreamMs: 50, updateStreamMs: 50})
server.listen(opts.port, '127.0.0.1', err => {
  if (err) throw err
  const port = server.address().port
  if (!opts.stream) return console.log(port)
  createStream(port, opts.stream, opts.shards, () => console.log(port))
})

// Any signature is accepted by kinesalite; the header only has to be there.
function call(port, operation, body, cb) {
  const payload = JSON.stringify(body)
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'Content-Length': Buffer.byteLength(payload),
      'X-Amz-Target': 'Kinesis_20131202.' + operation,
      'X-Amz-Date': '20150101T000000Z',
      'Authorization': 'AWS4-HMAC-SHA256 Credential=local/20150101/us-east-1/kinesis/aws4_request, ' +
        'SignedHeaders=host, Signature=0',
    },
  }, res => {
    let text = ''
    res.on('data', chunk => { text += chunk })
    res.on('end', () => cb(res.statusCode, text ? JSON.parse(text) : {}))
  })
  req.on('error', e => { throw e })
  req.end(payload)
}

function createStream(port, name, shards, ready) {
  call(port, 'CreateStream', {StreamName: name, ShardCount: shards}, status => {
    if (status !== 200) usage('cannot create stream ' + name)
    const poll = () => call(port, 'DescribeStreamSummary', {StreamName: name}, (_, body) => {
      const summary = body.StreamDescriptionSummary || {}
      if (summary.StreamStatus === 'ACTIVE') return ready()
      setTimeout(poll, 20)
    })
    poll()
  })
}
