/** Rows of the PostgreSQL trading ledger as the ledger's records, and BIGINT read as numbers. */
import type { Side } from './fill-model.js';
import type { FillRecord, OrderRecord } from './store.js';

export function toOrder(r: Record<string, unknown>): OrderRecord {
  return {
    id: r.id as string,
    clientOrderId: r.client_order_id as string,
    exchangeId: (r.exchange_id as string | null) ?? null,
    symbol: r.symbol as string,
    side: r.side as Side,
    type: r.type as OrderRecord['type'],
    amount: r.amount as number,
    price: r.price as number | null,
    status: r.status as OrderRecord['status'],
    filled: r.filled as number,
    average: r.average as number | null,
    fee: r.fee as number,
    reason: r.reason as string | null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

export function toFill(r: Record<string, unknown>): FillRecord {
  return {
    seq: r.seq as number,
    orderId: r.order_id as string,
    symbol: r.symbol as string,
    side: r.side as Side,
    price: r.price as number,
    amount: r.amount as number,
    fee: r.fee as number,
    role: r.role as string,
    at: r.at as number,
  };
}
