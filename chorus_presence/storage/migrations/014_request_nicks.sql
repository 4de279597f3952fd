-- The nickname (XEP-0172) a subscription request carried, kept with it so that it goes out
-- again with the request at the owner's next login and shows in the pending list.
ALTER TABLE subscription_requests ADD COLUMN nick TEXT;
