"""AwsCluster: a GPU cluster on EC2 with EFA, a cluster placement group and FSx for Lustre.

Nodes live in a private subnet (egress through NAT; SSM, EC2 messages and S3 through VPC
endpoints). The only security group lets members talk to each other and nothing in from
outside but the CIDRs the declaration names (SSH only). Access is through SSM.
"""

from __future__ import annotations

import base64
import json

import pulumi
import pulumi_aws as aws

from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog
from strata.stacks._helpers import UBUNTU_AMI_NAME, UBUNTU_OWNER, address_plan, efa_interfaces, user_data
from strata.stacks.base import PendingNode, StrataCluster
from strata.stacks.outputs import AccessInfo

SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages")


class AwsCluster(StrataCluster):
    """VPC, security group, IAM, placement group, GPU nodes with EFA, head node, FSx for Lustre."""

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("strata:aws:Cluster", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        region = spec.region or ""
        plan = address_plan(spec.network.vpc_cidr)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=spec.network.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=self._child,
        )
        private = aws.ec2.Subnet(
            f"{name}-private",
            vpc_id=vpc.id,
            cidr_block=plan.private,
            availability_zone=spec.zone,
            map_public_ip_on_launch=False,
            opts=self._child,
        )
        private_routes = self._egress(vpc, plan.public, spec.zone)
        members = self._security_groups(vpc, spec)
        self._endpoints(vpc, private, private_routes, region, spec.network.vpc_cidr)
        profile = self._iam(spec.storage.bucket)
        mounts = self._storage(spec, private, members)
        script = pulumi.Output.from_input(mounts).apply(
            lambda m: user_data(
                ssh_user=spec.access.ssh_user, ssh_public_key=spec.access.ssh_public_key, mounts=m
            )
        )
        image = (
            spec.image
            or aws.ec2.get_ami_output(
                most_recent=True,
                owners=[UBUNTU_OWNER],
                filters=[{"name": "name", "values": [UBUNTU_AMI_NAME]}],
            ).id
        )
        template = self._gpu_template(
            spec, image=image, private=private, members=members, profile=profile, script=script
        )
        workers = [
            aws.ec2.Instance(
                f"{name}-node-{i}",
                launch_template={"id": template.id, "version": "$Latest"},
                tags={"Name": f"{name}-node-{i}", "strata:role": "worker"},
                opts=self._child,
            )
            for i in range(spec.node_count)
        ]
        head = aws.ec2.Instance(
            f"{name}-head",
            ami=image,
            instance_type=spec.head_instance_type,
            subnet_id=private.id,
            vpc_security_group_ids=[members.id],
            iam_instance_profile=profile.name,
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
            root_block_device={"encrypted": True, "volume_size": spec.head.disk_gib, "volume_type": "gp3"},
            user_data=script,
            tags={"Name": f"{name}-head", "strata:role": "head"},
            opts=self._child,
        )
        nodes = [PendingNode(name=f"{name}-head", private_ip=head.private_ip, target=head.id, head=True)]
        nodes += [
            PendingNode(name=f"{name}-node-{i}", private_ip=w.private_ip, target=w.id)
            for i, w in enumerate(workers)
        ]
        access = AccessInfo(method="ssm", user=spec.access.ssh_user, region=region)
        self._publish(spec, nodes, access, mounts)

    def _egress(self, vpc: aws.ec2.Vpc, public_cidr: str, zone: str | None) -> aws.ec2.RouteTable:
        """A public subnet holding only the NAT gateway; the private route table points at it."""
        name, child = self._name, self._child
        public = aws.ec2.Subnet(
            f"{name}-public",
            vpc_id=vpc.id,
            cidr_block=public_cidr,
            availability_zone=zone,
            map_public_ip_on_launch=False,
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-rta", subnet_id=public.id, route_table_id=public_routes.id, opts=child
        )
        address = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", opts=child)
        nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=address.id, subnet_id=public.id, opts=child)
        return aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
            opts=child,
        )

    def _security_groups(self, vpc: aws.ec2.Vpc, spec: ClusterSpec) -> aws.ec2.SecurityGroup:
        """Members reach each other on every port (EFA needs it); outside, only declared CIDRs on SSH."""
        ingress = [
            {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True, "description": "cluster members"}
        ]
        ingress += [
            {
                "protocol": "tcp",
                "from_port": 22,
                "to_port": 22,
                "cidr_blocks": [cidr],
                "description": "declared SSH",
            }
            for cidr in spec.network.allowed_ingress_cidrs
        ]
        return aws.ec2.SecurityGroup(
            f"{self._name}-members",
            vpc_id=vpc.id,
            description="Strata cluster members",
            ingress=ingress,
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            opts=self._child,
        )

    def _endpoints(
        self, vpc: aws.ec2.Vpc, private: aws.ec2.Subnet, routes: aws.ec2.RouteTable, region: str, cidr: str
    ) -> None:
        name, child = self._name, self._child
        aws.ec2.RouteTableAssociation(
            f"{name}-private-rta", subnet_id=private.id, route_table_id=routes.id, opts=child
        )
        https = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from the VPC to its endpoints",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [cidr]}],
            opts=child,
        )
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            opts=child,
        )
        for service in ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=[private.id],
                security_group_ids=[https.id],
                private_dns_enabled=True,
                opts=child,
            )

    def _iam(self, bucket: str | None) -> aws.iam.InstanceProfile:
        """SSM's managed policy and, when declared, read/write on the one data bucket."""
        name, child = self._name, self._child
        assume = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = aws.iam.Role(f"{name}-node-role", assume_role_policy=json.dumps(assume), opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_POLICY_ARN, opts=child)
        if bucket:
            statements = [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
            ]
            aws.iam.RolePolicy(
                f"{name}-bucket",
                role=role.id,
                policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
                opts=child,
            )
        return aws.iam.InstanceProfile(f"{name}-node-profile", role=role.name, opts=child)

    def _storage(
        self, spec: ClusterSpec, private: aws.ec2.Subnet, members: aws.ec2.SecurityGroup
    ) -> pulumi.Output[list[dict[str, str]]]:
        """FSx for Lustre PERSISTENT_2 linked to the bucket, or the bucket itself, as mounts."""
        storage, point = spec.storage, spec.storage.mount_point
        if storage.kind == "s3":
            return pulumi.Output.from_input(
                [{"kind": "s3", "source": f"s3://{storage.bucket}", "mount_point": point}]
            )
        if storage.kind != "lustre":
            return pulumi.Output.from_input([])
        lustre = aws.fsx.LustreFileSystem(
            f"{self._name}-lustre",
            deployment_type="PERSISTENT_2",
            storage_type="SSD",
            storage_capacity=storage.size_gib,
            per_unit_storage_throughput=storage.throughput_mb_s_per_tib,
            subnet_ids=private.id,
            security_group_ids=[members.id],
            data_compression_type="LZ4",
            file_system_type_version="2.15",
            opts=self._child,
        )
        if storage.bucket:
            aws.fsx.DataRepositoryAssociation(
                f"{self._name}-lustre-s3",
                file_system_id=lustre.id,
                data_repository_path=f"s3://{storage.bucket}",
                file_system_path=f"/{storage.bucket}",
                batch_import_meta_data_on_create=True,
                s3={
                    "auto_import_policy": {"events": ["NEW", "CHANGED", "DELETED"]},
                    "auto_export_policy": {"events": ["NEW", "CHANGED", "DELETED"]},
                },
                opts=self._child,
            )
        return pulumi.Output.all(lustre.dns_name, lustre.mount_name).apply(
            lambda v: [{"kind": "lustre", "source": f"{v[0]}@tcp:/{v[1]}", "mount_point": point}]
        )

    def _gpu_template(
        self,
        spec: ClusterSpec,
        *,
        image: pulumi.Input[str],
        private: aws.ec2.Subnet,
        members: aws.ec2.SecurityGroup,
        profile: aws.iam.InstanceProfile,
        script: pulumi.Output[str],
    ) -> aws.ec2.LaunchTemplate:
        """Every GPU node: all EFA interfaces, IMDSv2, encrypted disk, placement and capacity."""
        row = load_catalog().get(spec.instance_type)
        common = {"subnet_id": private.id, "security_groups": [members.id], "delete_on_termination": "true"}
        if spec.network.efa and row.efa_count:
            interfaces = [{**common, **card} for card in efa_interfaces(row.efa_count)]
        else:
            interfaces = [{**common, "device_index": 0}]
        capacity = spec.capacity
        reserved = capacity.type in ("reserved", "capacity-block")
        placement = None
        if not reserved:
            group = aws.ec2.PlacementGroup(f"{self._name}-placement", strategy="cluster", opts=self._child)
            placement = {"group_name": group.name}
        market = {"spot": {"market_type": "spot"}, "capacity-block": {"market_type": "capacity-block"}}
        template: aws.ec2.LaunchTemplate = aws.ec2.LaunchTemplate(
            f"{self._name}-gpu",
            image_id=image,
            instance_type=spec.instance_type,
            iam_instance_profile={"arn": profile.arn},
            network_interfaces=interfaces,
            placement=placement,
            metadata_options={
                "http_tokens": "required",
                "http_endpoint": "enabled",
                "http_put_response_hop_limit": 1,
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/sda1",
                    "ebs": {
                        "volume_size": spec.disk_gib,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            capacity_reservation_specification=(
                {"capacity_reservation_target": {"capacity_reservation_id": capacity.reservation_id}}
                if reserved
                else None
            ),
            instance_market_options=market.get(capacity.type),
            user_data=script.apply(lambda text: base64.b64encode(text.encode()).decode()),
            opts=self._child,
        )
        return template
