//! Group requests sent to a broker that does not coordinate the group get
//! NOT_COORDINATOR, as Kafka answers (clients then look the coordinator up
//! again): here the broker leads no `__consumer_offsets` partition yet.

mod support;

use gregor_routing::NetworkConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_requests_to_a_broker_that_does_not_coordinate_are_not_coordinator() {
    let running = support::start(NetworkConfig::default()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let group = GroupId(StrBytes::from_static_str("elsewhere"));
    let not_coordinator = ResponseError::NotCoordinator.code();

    let mut heartbeat = HeartbeatRequest::default();
    heartbeat.group_id = group.clone();
    heartbeat.member_id = StrBytes::from_static_str("m");
    match support::call(&mut stream, ApiKey::Heartbeat, 4, &RequestKind::Heartbeat(heartbeat)).await {
        ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, not_coordinator),
        other => panic!("{other:?}"),
    }

    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![group.clone()];
    match support::call(
        &mut stream,
        ApiKey::DescribeGroups,
        5,
        &RequestKind::DescribeGroups(describe),
    )
    .await
    {
        ResponseKind::DescribeGroups(r) => assert_eq!(r.groups[0].error_code, not_coordinator),
        other => panic!("{other:?}"),
    }

    let mut fetch = OffsetFetchRequest::default();
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = group;
    fetch.groups = vec![g];
    match support::call(&mut stream, ApiKey::OffsetFetch, 8, &RequestKind::OffsetFetch(fetch)).await {
        ResponseKind::OffsetFetch(r) => assert_eq!(r.groups[0].error_code, not_coordinator),
        other => panic!("{other:?}"),
    }
}
